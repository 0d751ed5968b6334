// Command demo-app is a tiny job server with a goroutine leak, for gmon's demo: every job runs in
// its own goroutine with a timeout watcher, and the watcher of a job that finishes in time is never
// released, so one goroutine per job stays behind.
package main

import (
	"flag"
	"fmt"
	"sync"
	"time"
)

type result struct {
	id  int
	err error
}

// run does a job and reports on done. The watcher waits for a result that is sent only on the
// timeout path: when the job finishes first, nobody ever sends on cancel, and the watcher leaks.
func run(id int, wg *sync.WaitGroup, done chan<- result) {
	defer wg.Done()
	cancel := make(chan struct{})
	go watch(id, cancel) // leaks whenever the job finishes in time
	time.Sleep(time.Duration(id%5) * time.Millisecond)
	done <- result{id: id}
}

func watch(id int, cancel <-chan struct{}) {
	<-cancel
	fmt.Println("job", id, "cancelled")
}

func main() {
	jobs := flag.Int("jobs", 20, "how many jobs to run")
	linger := flag.Duration("linger", time.Second, "how long to stay up after the jobs")
	flag.Parse()
	done := make(chan result, *jobs)
	var wg sync.WaitGroup
	for i := 1; i <= *jobs; i++ {
		wg.Add(1)
		go run(i, &wg, done)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	fmt.Println(len(done), "jobs done")
	time.Sleep(*linger)
}
