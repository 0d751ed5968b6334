// Command httpd is the realistic load of scripts/bench: an HTTP server on loopback (a goroutine per
// connection, as net/http does) and a client driving it with -c keep-alive-less connections for -d,
// printing requests per second.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	conns := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 2*time.Second, "how long to drive the server")
	wait := flag.Bool("wait", false, "read a line from stdin before starting")
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	}))
	if *wait {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	url := "http://" + ln.Addr().String() + "/"
	// A new connection per request: each one is a new server goroutine, the cost gmon adds to.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(*dur)
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := client.Get(url)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%.0f\n", float64(n.Load())/dur.Seconds())
}
