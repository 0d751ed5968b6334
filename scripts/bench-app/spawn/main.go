// Command spawn is the goroutine benchmark of scripts/bench: it creates -n goroutines in a loop, each
// exiting at once, and prints the wall time per goroutine in ns (-cpu: the process's CPU time per
// goroutine). -wait reads a line first, so a monitor can attach to the running process. -batch waits
// for every B goroutines before going on (with GOMAXPROCS=1 the probes' hits then run one after
// another on one thread); -depth spawns from the bottom of a recursion that deep (deeper stacks).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func spawn(n, batch int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		if batch > 0 && (i+1)%batch == 0 {
			wg.Wait()
		}
	}
	wg.Wait()
}

//go:noinline
func recurse(depth, n, batch int) {
	if depth <= 0 {
		spawn(n, batch)
		return
	}
	recurse(depth-1, n, batch)
}

func main() {
	n := flag.Int("n", 200000, "goroutines to create")
	wait := flag.Bool("wait", false, "read a line from stdin before starting")
	cpu := flag.Bool("cpu", false, "print CPU time per goroutine instead of wall time")
	batch := flag.Int("batch", 0, "wait for the goroutines every this many (0: only at the end)")
	depth := flag.Int("depth", 0, "spawn from the bottom of a recursion this deep")
	flag.Parse()
	if *wait {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	start, cpu0 := time.Now(), cpuNs()
	recurse(*depth, *n, *batch)
	if *cpu {
		fmt.Printf("%.1f\n", float64(cpuNs()-cpu0)/float64(*n))
		return
	}
	fmt.Printf("%.1f\n", float64(time.Since(start).Nanoseconds())/float64(*n))
}
