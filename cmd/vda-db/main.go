// Command vda-db creates, upgrades and reports the VDA schema of an SQL
// database (PostgreSQL, MySQL/MariaDB or SQLite):
//
//	vda-db --action create  --db-uri postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db
//	vda-db --action upgrade --db-uri mysql://vda:pw@db:3306/vda
//	vda-db --action version --db-uri sqlite:///var/lib/vda/vda.db
//
// create is idempotent (it also upgrades an older schema); upgrade needs an
// existing schema; version prints the database's schema version and the one
// this binary writes. --db-uri defaults to $VDA_DB_URI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vda-io/vda/internal/version"
	"github.com/vda-io/vda/store/sqlstore"
	_ "github.com/vda-io/vda/store/sqlstore/mysql"    // mysql://
	_ "github.com/vda-io/vda/store/sqlstore/postgres" // postgresql://
	_ "github.com/vda-io/vda/store/sqlstore/sqlite"   // sqlite://
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is what the flags say.
type config struct {
	action  string
	dbURI   string
	timeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("vda-db", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.action, "action", "", "create, upgrade or version")
	fs.StringVar(&c.dbURI, "db-uri", os.Getenv("VDA_DB_URI"),
		"database URI: postgresql://, postgres://, mysql:// or sqlite:// (default $VDA_DB_URI)")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "give up after this long")
	showVersion := version.Flag(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := version.Check(showVersion); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch c.action {
	case "create", "upgrade", "version":
	case "":
		return c, errors.New("--action is required (create, upgrade or version)")
	default:
		return c, fmt.Errorf("unknown --action %q (want create, upgrade or version)", c.action)
	}
	if c.dbURI == "" {
		return c, errors.New("--db-uri is required")
	}
	if c.timeout <= 0 {
		return c, errors.New("--timeout must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if errors.Is(err, version.ErrRequested) {
		version.Print(stdout, "vda-db")
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "vda-db:", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := act(ctx, c, stdout); err != nil {
		fmt.Fprintln(stderr, "vda-db:", err)
		return exitError
	}
	return exitOK
}

func act(ctx context.Context, c config, stdout io.Writer) error {
	where := redacted(c.dbURI)
	switch c.action {
	case "create":
		v, err := sqlstore.CreateSchema(ctx, c.dbURI)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema version %d ready in %s\n", v, where)
	case "upgrade":
		from, to, err := sqlstore.UpgradeSchema(ctx, c.dbURI)
		if err != nil {
			return err
		}
		if from == to {
			fmt.Fprintf(stdout, "schema version %d in %s is current\n", to, where)
		} else {
			fmt.Fprintf(stdout, "schema upgraded from version %d to %d in %s\n", from, to, where)
		}
	case "version":
		v, err := sqlstore.ReadSchemaVersion(ctx, c.dbURI)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema version %d (0 = none); this vda-db writes version %d\n", v, sqlstore.SchemaVersion)
	}
	return nil
}

// redacted hides the password of a URI.
func redacted(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "the database"
	}
	return u.Redacted()
}
