// Command parkmany parks -n goroutines in a few ways (channel receive, select, mutex, sleep), at a few
// stack depths, prints "ready", then does busy work and prints, per 100 ms tick, when it ended (Unix
// ms) and how many units of work it got done: the target of scripts/bench-snapshot.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

var (
	never = make(chan int)
	mu    sync.Mutex
)

//go:noinline
func park(kind, depth int) int {
	if depth > 0 {
		return park(kind, depth-1) + 1
	}
	switch kind {
	case 0:
		return <-never
	case 1:
		select {
		case v := <-never:
			return v
		case <-make(chan int):
			return 0
		}
	case 2:
		mu.Lock()
		return 0
	default:
		time.Sleep(time.Hour)
		return 0
	}
}

func main() {
	n := flag.Int("n", 1000, "goroutines to park")
	seconds := flag.Float64("seconds", 5, "how long to work after parking")
	gc := flag.Bool("gc", false, "collect garbage once parked, as a service's GC soon does: it marks each parked goroutine's wait as seen")
	flag.Parse()
	mu.Lock()
	for i := 0; i < *n; i++ {
		go park(i%4, i%5)
	}
	time.Sleep(200 * time.Millisecond)
	if *gc {
		runtime.GC()
	}
	fmt.Println("ready")
	end := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	x := uint64(1)
	for time.Now().Before(end) {
		tick := time.Now().Add(100 * time.Millisecond)
		units := 0
		for time.Now().Before(tick) {
			for i := 0; i < 10000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
			units++
		}
		fmt.Println(time.Now().UnixMilli(), units)
	}
	fmt.Fprintln(os.Stderr, x)
}
