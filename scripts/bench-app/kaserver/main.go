// Command kaserver is the busy service of scripts/bench: a net/http server on loopback whose handler
// hands each request's work to a goroutine and waits for it, as services do. With keep-alive
// connections every request starts two goroutines (the handler's and net/http's background reader
// of the connection), so a load generator's requests/s measure what four probe hits per request cost.
// It prints its address, then serves until killed.
package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().String())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan int)
		go func() { done <- len(r.URL.Path) }()
		w.Write([]byte("hello " + strconv.Itoa(<-done) + "\n"))
	}))
}
