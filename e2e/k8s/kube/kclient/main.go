// Command kclient is the client-go program of vrrplb's real-Kubernetes
// suite: what kubelets and controllers do through the VIP, reduced to what
// the suite measures. It writes one JSON object a line on stdout, each with
// "t" (Unix nanoseconds) and "event", for the test to read.
//
//	kclient informer  an informer on the ConfigMaps of a namespace:
//	                  "synced", then "add" / "update" / "delete" with name and
//	                  rv, and "watching" (id -1) each time its watch opens
//	kclient load      a request loop at --rate requests/s over --workers
//	                  connections, creating a ConfigMap then listing (with
//	                  --reads only listing, which client-go retries):
//	                  "created" (name, rv) and "error" (op, err) per request,
//	                  "summary" (ok, failed) at SIGTERM or after --duration
//	kclient watches   --count watches of the namespace's ConfigMaps, each over
//	                  its own connection, re-opened at once when it ends (after
//	                  200 ms when it lasted under 1 s or could not be
//	                  opened): "watching" (id)
//	                  each time one is open, "ended" (id, err), and with
//	                  --events "got" (id, name) for each event received
//	kclient repeat    -- COMMAND ARGS...: --count copies of a command (kubectl
//	                  get -w), each started again at once when it exits (after
//	                  200 ms when it ran under 1 s): "watching" (id) at each
//	                  start, "got" (id, name: the line) for each line it
//	                  prints, "ended" (id, err) when it exits
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

// emit writes one event line.
func emit(event string, kv ...any) {
	m := map[string]any{"t": time.Now().UnixNano(), "event": event}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(m)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kclient informer|load|watches|repeat [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig `FILE`")
	namespace := fs.String("namespace", "default", "namespace of the ConfigMaps")
	rate := fs.Float64("rate", 20, "load: requests per second, all workers together")
	workers := fs.Int("workers", 6, "load: connections the requests spread over")
	prefix := fs.String("prefix", "load", "load: name prefix of the ConfigMaps it creates")
	duration := fs.Duration("duration", 0, "load: stop after this long; 0: at SIGTERM")
	timeout := fs.Duration("timeout", 10*time.Second, "load: a request's timeout")
	fresh := fs.Bool("fresh", false, "load: a new connection for every request")
	count := fs.Int("count", 30, "watches, repeat: how many")
	events := fs.Bool("events", false, "watches: report each event received")
	reads := fs.Bool("reads", false, "load: only list, no creates")
	_ = fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kclient:", err)
		os.Exit(1)
	}
	cfg.UserAgent = "vrrplb-e2e-kclient"
	cfg.QPS, cfg.Burst = 1000, 1000
	switch os.Args[1] {
	case "informer":
		err = informer(ctx, cfg, *namespace)
	case "load":
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		err = load(ctx, cfg, *namespace, *prefix, *rate, *workers, *timeout, *fresh, *reads)
	case "watches":
		err = watches(ctx, cfg, *namespace, *count, *events)
	case "repeat":
		err = repeat(ctx, *count, fs.Args())
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kclient:", err)
		os.Exit(1)
	}
}

// ownConnection gives cfg its own transport: client-go shares one transport
// (and so one HTTP/2 connection) among clients of equal configs, unless the
// config has its own dialer.
func ownConnection(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c.Dial = d.DialContext
	return c
}

func informer(ctx context.Context, cfg *rest.Config, namespace string) error {
	cs, err := kubernetes.NewForConfig(ownConnection(cfg))
	if err != nil {
		return err
	}
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "configmaps", namespace, fields.Everything())
	// "watching" each time the informer's watch is (re)opened.
	watchCtx := lw.WatchFuncWithContext
	lw.WatchFuncWithContext = func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
		w, err := watchCtx(ctx, options)
		if err == nil {
			emit("watching", "id", -1)
		}
		return w, err
	}
	lw.WatchFunc = nil
	inf := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	report := func(event string, obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			emit(event, "name", cm.Name, "rv", cm.ResourceVersion)
		}
	}
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { report("add", obj) },
		UpdateFunc: func(_, obj any) { report("update", obj) },
		DeleteFunc: func(obj any) { report("delete", obj) },
	})
	if err != nil {
		return err
	}
	go inf.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return errors.New("informer never synced")
	}
	emit("synced")
	<-ctx.Done()
	return nil
}

func load(ctx context.Context, cfg *rest.Config, namespace, prefix string, rate float64, workers int, timeout time.Duration, fresh, reads bool) error {
	var ok, failed, seq atomic.Int64
	interval := time.Duration(float64(time.Second) * float64(workers) / rate)
	var wg sync.WaitGroup
	for w := range workers {
		// client is a clientset on the worker's connection, or with fresh
		// on a connection of its own, closed when done is called.
		client := func() (*kubernetes.Clientset, func(), error) {
			c := ownConnection(cfg)
			c.Timeout = timeout
			hc, err := rest.HTTPClientFor(c)
			if err != nil {
				return nil, nil, err
			}
			cs, err := kubernetes.NewForConfigAndClient(c, hc)
			return cs, hc.CloseIdleConnections, err
		}
		cs, _, err := client()
		if err != nil {
			return err
		}
		wg.Go(func() {
			// Workers start spread over one interval.
			tick := time.NewTicker(interval)
			defer tick.Stop()
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval * time.Duration(w) / time.Duration(workers)):
			}
			for {
				n := seq.Add(1)
				cs, done := cs, func() {}
				if fresh {
					var err error
					if cs, done, err = client(); err != nil {
						emit("error", "op", "client", "err", err.Error())
						return
					}
				}
				name := fmt.Sprintf("%s-%d", prefix, n)
				rctx, cancel := context.WithTimeout(context.Background(), timeout)
				var op string
				var err error
				if n%2 == 1 && !reads {
					op = "create"
					var cm *corev1.ConfigMap
					cm, err = cs.CoreV1().ConfigMaps(namespace).Create(rctx, &corev1.ConfigMap{
						ObjectMeta: metav1.ObjectMeta{Name: name},
						Data:       map[string]string{"worker": fmt.Sprint(w)},
					}, metav1.CreateOptions{})
					if err == nil {
						emit("created", "name", name, "rv", cm.ResourceVersion)
					}
				} else {
					op = "list"
					_, err = cs.CoreV1().ConfigMaps(namespace).List(rctx, metav1.ListOptions{Limit: 5})
				}
				cancel()
				done()
				if err != nil {
					failed.Add(1)
					emit("error", "op", op, "name", name, "err", err.Error())
				} else {
					ok.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	emit("summary", "ok", ok.Load(), "failed", failed.Load())
	return nil
}

func watches(ctx context.Context, cfg *rest.Config, namespace string, count int, events bool) error {
	var wg sync.WaitGroup
	for id := range count {
		cs, err := kubernetes.NewForConfig(ownConnection(cfg))
		if err != nil {
			return err
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				w, err := cs.CoreV1().ConfigMaps(namespace).Watch(ctx, metav1.ListOptions{})
				if err != nil {
					emit("ended", "id", id, "err", err.Error())
					sleep(ctx, 200*time.Millisecond)
					continue
				}
				emit("watching", "id", id)
				opened := time.Now()
				for ev := range w.ResultChan() {
					if !events {
						continue
					}
					name := ""
					if cm, ok := ev.Object.(*corev1.ConfigMap); ok {
						name = cm.Name
					}
					emit("got", "id", id, "name", name)
				}
				w.Stop()
				emit("ended", "id", id, "err", "")
				// As client-go's reflector: at once, unless the watch
				// lasted less than a second.
				if time.Since(opened) < time.Second {
					sleep(ctx, 200*time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func repeat(ctx context.Context, count int, argv []string) error {
	if len(argv) == 0 {
		return errors.New("repeat: no command after --")
	}
	var wg sync.WaitGroup
	for id := range count {
		wg.Go(func() {
			for ctx.Err() == nil {
				started := time.Now()
				err := runLines(ctx, argv, func(line string) { emit("got", "id", id, "name", line) }, func() { emit("watching", "id", id) })
				msg := ""
				if err != nil {
					msg = err.Error()
				}
				emit("ended", "id", id, "err", msg)
				if time.Since(started) < time.Second {
					sleep(ctx, 200*time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// runLines runs argv until it exits or ctx ends, calling started once it
// runs and line for each line of its output.
func runLines(ctx context.Context, argv []string, line func(string), started func()) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	started()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line(sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
