// Command handoff runs Handoff: the web app, the bot API and the background
// loops in one binary.
//
//	handoff serve    start the server (migrates first; --demo also seeds)
//	handoff migrate  apply database migrations
//	handoff seed     create the demo data once
//	handoff apikey create --brand SLUG  print a new bot API key
//	handoff simulate --url URL --api-key KEY  drive a running server with simulated users
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // time zones on machines without a zoneinfo database
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Handoff — human support, on demand.

Usage:
  handoff serve   [flags]   start the server (runs migrations first)
  handoff migrate [flags]   apply database migrations and exit
  handoff seed    [flags]   create the demo data (safe to run twice)
  handoff apikey create --brand SLUG [--name NAME]
                            print a new API key for a brand's bot
  handoff simulate --url URL --api-key KEY [--agents N --rate R --duration D]
                            drive running servers with simulated agents, bots
                            and customers; print one JSON line of results

Run "handoff COMMAND -h" for the flags; each has an environment variable.
`

// run is main without the process: tests call it with their own arguments,
// environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "seed":
		err = cmdSeed(ctx, args[1:], getenv, stdout, stderr)
	case "apikey":
		err = cmdAPIKey(ctx, args[1:], getenv, stdout, stderr)
	case "simulate":
		err = cmdSimulate(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "handoff: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == errUsage {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "handoff %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
