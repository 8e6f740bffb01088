// Command ferretdb runs FerretDB v1.24.2 on SQLite as the local MongoDB
// stand-in for development, tests and benchmarks (see docs/ferretdb.md).
//
// It prints one JSON line {"uri": "..."} on stdout once it listens, and stops
// on SIGINT, SIGTERM or when its standard input closes, so that a parent that
// dies without cleaning up never leaves it running.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	dir := flag.String("dir", "", "existing directory for the SQLite files (required)")
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on; port 0 picks a free one")
	watchStdin := flag.Bool("watch-stdin", true, "stop when standard input closes")
	flag.Parse()

	if err := run(*dir, *listen, *watchStdin); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(dir, listen string, watchStdin bool) error {
	if dir == "" {
		return fmt.Errorf("--dir is required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	db, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	go indexIDLookups(ctx, abs, 200*time.Millisecond, logger)

	line, err := json.Marshal(map[string]string{"uri": db.MongoDBURI()})
	if err != nil {
		return err
	}
	fmt.Println(string(line))

	return db.Run(ctx)
}
