package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// idleSummary is the result of `simulate --idle N`.
type idleSummary struct {
	IdleSockets    int64 `json:"idle_sockets"`
	Cancelled      int64 `json:"cancelled"` // escalations cancelled at the end, so none is left waiting
	Errors         int64 `json:"errors"`
	ServerRSSBytes int64 `json:"server_rss_bytes"`
	RSSBeforeBytes int64 `json:"server_rss_before_bytes"`
}

// runIdle measures what idle websockets cost the server: it escalates N
// conversations, opens each one's customer socket, holds them all for
// --duration, and reports the server's resident memory before and after
// (process_resident_memory_bytes from /metrics, which answers on loopback).
func runIdle(ctx context.Context, cfg simConfig, stdout, stderr io.Writer) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	base := cfg.urls[0]
	before, err := serverRSS(ctx, client, base)
	if err != nil {
		return fmt.Errorf("read the server's memory from %s/metrics (it answers on loopback): %w", base, err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var opened, failed atomic.Int64
	var conns, escalated sync.Map
	hold, cancelHold := context.WithCancel(ctx)
	defer cancelHold()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				id, c, err := openIdleCustomer(ctx, client, cfg, base, fmt.Sprintf("idle-%s-%d", run, i))
				if id != "" {
					escalated.Store(i, id)
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				opened.Add(1)
				conns.Store(i, c)
				go func() { // read and drop frames (queue updates) until the hold ends
					for {
						if _, _, err := c.Read(hold); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	start := time.Now()
	for i := 0; i < cfg.idle; i++ {
		jobs <- i
		if i%1000 == 999 {
			fmt.Fprintf(stderr, "simulate: %d sockets open (%s)\n", opened.Load(), time.Since(start).Round(time.Second))
		}
	}
	close(jobs)
	wg.Wait()
	fmt.Fprintf(stderr, "simulate: %d idle customer sockets open, %d failed; holding them %s\n", opened.Load(), failed.Load(), cfg.duration)
	select {
	case <-time.After(cfg.duration):
	case <-ctx.Done():
	}
	after, err := serverRSS(ctx, client, base)
	if err != nil {
		failed.Add(1)
	}
	cancelHold()
	conns.Range(func(_, v any) bool { v.(*websocket.Conn).CloseNow(); return true })
	// The bot cancels what it escalated, as its customers left: the
	// queue is as it was before the run, not 10,000 longer.
	var cancelled atomic.Int64
	ids := make(chan string)
	for w := 0; w < 64; w++ {
		wg.Go(func() {
			for id := range ids {
				switch status, err := cancelEscalation(ctx, client, base, cfg.apiKey, id); {
				case err == nil && status == http.StatusOK:
					cancelled.Add(1)
				case err == nil && status == http.StatusConflict: // an agent took it meanwhile
				default:
					failed.Add(1)
				}
			}
		})
	}
	escalated.Range(func(_, v any) bool { ids <- v.(string); return true })
	close(ids)
	wg.Wait()
	fmt.Fprintf(stderr, "simulate: cleanup: %d escalations cancelled\n", cancelled.Load())
	b, err := json.Marshal(idleSummary{IdleSockets: opened.Load(), Cancelled: cancelled.Load(), Errors: failed.Load(), ServerRSSBytes: after, RSSBeforeBytes: before})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// openIdleCustomer escalates one conversation and opens its customer
// socket. id is the conversation's when the escalation was made, even if
// the socket then failed.
func openIdleCustomer(ctx context.Context, client *http.Client, cfg simConfig, base, externalID string) (id string, conn *websocket.Conn, err error) {
	body, _ := json.Marshal(map[string]any{"external_id": externalID, "language": cfg.language, "skills": cfg.skills,
		"customer": map[string]string{"name": "Idle"}, "summary": "idle socket measurement"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/escalations", bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.apiKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer res.Body.Close()
	var out struct {
		ID          string `json:"id"`
		CustomerURL string `json:"customer_url"`
	}
	if res.StatusCode != http.StatusCreated || json.NewDecoder(res.Body).Decode(&out) != nil {
		return "", nil, fmt.Errorf("escalation answered %d", res.StatusCode)
	}
	i := strings.Index(out.CustomerURL, "/c/")
	if i < 0 {
		return out.ID, nil, fmt.Errorf("customer_url %q", out.CustomerURL)
	}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + out.CustomerURL[i:] + "/ws"
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPClient: client})
	return out.ID, c, err
}

// serverRSS reads process_resident_memory_bytes from the server's /metrics.
func serverRSS(ctx context.Context, client *http.Client, base string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics answered %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("/metrics has no process_resident_memory_bytes")
}
