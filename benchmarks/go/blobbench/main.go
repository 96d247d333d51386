// Command blobbench is the registry client of Cargobay's benchmarks: the same code pushes to and
// pulls from every server, so ratios compare servers, not clients. Standard library only.
//
//	blobbench push   -url U -repo R -file F -digest D -mode stream|put|post
//	blobbench pull   -url U -repo R -digest D -size N
//	blobbench layers-push -url U -repo R -dir D -tag T -jobs N
//	blobbench layers-pull -url U -repo R -tag T -jobs N
//	blobbench serve  -listen ADDR -file F     (client ceiling: serves F on GET, swallows uploads)
//
// The Authorization header value, if any, comes from the BLOBBENCH_AUTH environment variable.
// Each run prints one JSON object on stdout: {"seconds": …, "bytes": …, "requests": …}.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	bufSize     = 1 << 20
)

type result struct {
	Seconds  float64            `json:"seconds"`
	Bytes    int64              `json:"bytes"`
	Requests int64              `json:"requests"`
	Phases   map[string]float64 `json:"phases,omitempty"`
}

type client struct {
	base     string
	repo     string
	auth     string
	http     *http.Client
	requests atomic.Int64
	phases   map[string]float64 // seconds per request kind of a single-blob push (POST, PATCH, PUT)
}

func newClient(base, repo string, conns int) *client {
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
	}
	return &client{
		base: strings.TrimRight(base, "/"),
		repo: repo,
		auth: os.Getenv("BLOBBENCH_AUTH"),
		http: &http.Client{Transport: transport, Timeout: 30 * time.Minute},
	}
}

func (c *client) do(method, target string, body io.Reader, length int64, headers map[string]string) (*http.Response, error) {
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		target = c.base + target
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = length // -1: chunked transfer encoding
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c.requests.Add(1)
	return c.http.Do(req)
}

// expect sends a request, checks the status, drains and closes the body, and returns the response
// for its headers.
func (c *client) expect(method, target string, body io.Reader, length int64, headers map[string]string,
	want ...int) (*http.Response, error) {
	started := time.Now()
	resp, err := c.do(method, target, body, length, headers)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if c.phases != nil {
		defer func() { c.phases[method] += time.Since(started).Seconds() }()
	}
	for _, w := range want {
		if resp.StatusCode == w {
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp, nil
		}
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	return nil, fmt.Errorf("%s %s: status %d, want %v: %s", resp.Request.Method, resp.Request.URL.Path,
		resp.StatusCode, want, bytes.TrimSpace(msg))
}

func (c *client) resolve(location string) (string, error) {
	base, err := url.Parse(c.base + "/")
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(location)
	if err != nil {
		return "", err
	}
	return base.ResolveReference(ref).String(), nil
}

func withDigest(location, digest string) string {
	sep := "?"
	if strings.Contains(location, "?") {
		sep = "&"
	}
	return location + sep + "digest=" + url.QueryEscape(digest)
}

// onlyReader hides *os.File's extra methods so the transport cannot learn the size (chunked upload).
type onlyReader struct{ io.Reader }

// pushBlob uploads one blob. stream: POST, one PATCH (chunked unless sized), PUT ?digest=;
// put: POST, PUT ?digest= with the body (monolithic, the form every registry supports);
// post: one POST ?digest= with the body (monolithic single POST, optional in the spec).
func (c *client) pushBlob(body io.Reader, size int64, digest, mode string, chunked bool) error {
	uploads := fmt.Sprintf("/v2/%s/blobs/uploads/", c.repo)
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	if mode == "post" {
		_, err := c.expect("POST", withDigest(uploads, digest), body, size, octet, 201)
		return err
	}
	resp, err := c.expect("POST", uploads, nil, 0, nil, 202)
	if err != nil {
		return err
	}
	location, err := c.resolve(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	if mode == "put" {
		_, err = c.expect("PUT", withDigest(location, digest), body, size, octet, 201)
		return err
	}
	length := size
	if chunked {
		body, length = onlyReader{body}, -1
	}
	resp, err = c.expect("PATCH", location, body, length, octet, 202, 204)
	if err != nil {
		return err
	}
	if next := resp.Header.Get("Location"); next != "" {
		if location, err = c.resolve(next); err != nil {
			return err
		}
	}
	_, err = c.expect("PUT", withDigest(location, digest), nil, 0, nil, 201)
	return err
}

// pullBlob GETs a blob and verifies its sha256 digest and size while streaming.
func (c *client) pullBlob(digest string, size int64, buf []byte) (int64, error) {
	resp, err := c.do("GET", fmt.Sprintf("/v2/%s/blobs/%s", c.repo, digest), nil, 0, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return 0, fmt.Errorf("GET blob %s: status %d: %s", digest, resp.StatusCode, msg)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, resp.Body, buf)
	if err != nil {
		return n, err
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if got != digest {
		return n, fmt.Errorf("pulled blob digest %s, want %s", got, digest)
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("pulled %d bytes, want %d", n, size)
	}
	return n, nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type manifest struct {
	Config descriptor   `json:"config"`
	Layers []descriptor `json:"layers"`
}

// parallel runs fn over items with n workers and returns the first error.
func parallel(items []descriptor, n int, fn func(descriptor) error) error {
	work := make(chan descriptor)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if err := fn(d); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, d := range items {
		work <- d
	}
	close(work)
	wg.Wait()
	return first
}

// layersPush pushes every blob of dir/manifest.json (files dir/blobs/<hex>) as a docker client
// does (HEAD, then POST/PATCH/PUT), then the manifest by tag.
func (c *client) layersPush(dir, tag string, jobs int) (int64, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return 0, err
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, err
	}
	var total atomic.Int64
	blobs := append([]descriptor{m.Config}, m.Layers...)
	err = parallel(blobs, jobs, func(d descriptor) error {
		resp, err := c.expect("HEAD", fmt.Sprintf("/v2/%s/blobs/%s", c.repo, d.Digest), nil, 0, nil, 200, 404)
		if err != nil {
			return err
		}
		if resp.StatusCode == 200 {
			return nil
		}
		f, err := os.Open(filepath.Join(dir, "blobs", strings.TrimPrefix(d.Digest, "sha256:")))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := c.pushBlob(f, d.Size, d.Digest, "stream", false); err != nil {
			return err
		}
		total.Add(d.Size)
		return nil
	})
	if err != nil {
		return 0, err
	}
	_, err = c.expect("PUT", fmt.Sprintf("/v2/%s/manifests/%s", c.repo, tag), bytes.NewReader(raw),
		int64(len(raw)), map[string]string{"Content-Type": ociManifest}, 201)
	return total.Load() + int64(len(raw)), err
}

// layersPull GETs the manifest by tag, then every blob it names, verifying each digest.
func (c *client) layersPull(tag string, jobs int) (int64, error) {
	resp, err := c.do("GET", fmt.Sprintf("/v2/%s/manifests/%s", c.repo, tag), nil, 0,
		map[string]string{"Accept": ociManifest})
	if err != nil {
		return 0, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET manifest: status %d: %s", resp.StatusCode, raw)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, err
	}
	var total atomic.Int64
	blobs := append([]descriptor{m.Config}, m.Layers...)
	err = parallel(blobs, jobs, func(d descriptor) error {
		buf := make([]byte, 256<<10)
		n, err := c.pullBlob(d.Digest, d.Size, buf)
		total.Add(n)
		return err
	})
	return total.Load() + int64(len(raw)), err
}

// serve is the ceiling check: GET serves the file (sendfile), uploads are read and thrown away.
func serve(listen, file string) error {
	var sessions atomic.Int64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "GET", "HEAD":
			http.ServeFile(w, r, file)
		case "POST", "PATCH", "PUT":
			buf := make([]byte, bufSize)
			_, _ = io.CopyBuffer(io.Discard, r.Body, buf)
			if r.Method == "POST" && r.URL.Query().Get("digest") == "" {
				w.Header().Set("Location", fmt.Sprintf("/v2/sink/blobs/uploads/%d", sessions.Add(1)))
				w.WriteHeader(202)
				return
			}
			if r.Method == "PATCH" {
				w.Header().Set("Location", r.URL.Path)
				w.WriteHeader(202)
				return
			}
			w.WriteHeader(201)
		default:
			w.WriteHeader(405)
		}
	})
	return http.ListenAndServe(listen, handler)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: blobbench push|pull|layers-push|layers-pull|serve [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	base := fs.String("url", "", "registry base URL, e.g. http://127.0.0.1:5000")
	repo := fs.String("repo", "", "repository name as the client spells it")
	file := fs.String("file", "", "blob file (push) or file to serve (serve)")
	digest := fs.String("digest", "", "sha256:… digest of the blob")
	size := fs.Int64("size", -1, "expected blob size (pull)")
	mode := fs.String("mode", "stream", "push mode: stream (POST, PATCH, PUT), put (POST, PUT) or post (POST ?digest=)")
	chunked := fs.Bool("chunked", true, "stream mode: send the PATCH body with chunked transfer encoding")
	dir := fs.String("dir", "", "image directory: manifest.json and blobs/<hex> (layers-push)")
	tag := fs.String("tag", "latest", "tag of the image (layers-*)")
	jobs := fs.Int("jobs", 4, "concurrent blob transfers (layers-*)")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (serve)")
	_ = fs.Parse(os.Args[2:])

	if cmd == "serve" {
		if err := serve(*listen, *file); err != nil {
			fmt.Fprintln(os.Stderr, "blobbench:", err)
			os.Exit(1)
		}
		return
	}
	c := newClient(*base, *repo, *jobs)
	start := time.Now()
	var n int64
	var err error
	switch cmd {
	case "push":
		c.phases = map[string]float64{}
		var f *os.File
		if f, err = os.Open(*file); err == nil {
			var st os.FileInfo
			if st, err = f.Stat(); err == nil {
				n = st.Size()
				err = c.pushBlob(f, n, *digest, *mode, *chunked)
			}
			f.Close()
		}
	case "pull":
		n, err = c.pullBlob(*digest, *size, make([]byte, bufSize))
	case "layers-push":
		n, err = c.layersPush(*dir, *tag, *jobs)
	case "layers-pull":
		n, err = c.layersPull(*tag, *jobs)
	default:
		err = errors.New("unknown command " + cmd)
	}
	elapsed := time.Since(start).Seconds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "blobbench:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(result{Seconds: elapsed, Bytes: n, Requests: c.requests.Load(), Phases: c.phases})
}
