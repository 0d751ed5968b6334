// Command spawn is the goroutine benchmark of scripts/bench: it creates -n goroutines in a loop, each
// exiting at once, and prints the wall time per goroutine in ns. -wait reads a line first, so a
// monitor can attach to the running process.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 200000, "goroutines to create")
	wait := flag.Bool("wait", false, "read a line from stdin before starting")
	flag.Parse()
	if *wait {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
	}
	wg.Wait()
	fmt.Printf("%.1f\n", float64(time.Since(start).Nanoseconds())/float64(*n))
}
