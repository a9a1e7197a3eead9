package multihost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// PostgresAvailable returns nil when a PostgreSQL server and its user are
// installed, or says what is missing.
func PostgresAvailable() error {
	if _, err := pgBinDir(); err != nil {
		return err
	}
	if _, err := user.Lookup("postgres"); err != nil {
		return fmt.Errorf("no postgres user: %w", err)
	}
	return nil
}

// pgBinDir finds the newest installed PostgreSQL server.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed (scripts/sqlservers start installs it; CI runs it)")
}

// StartPostgres runs a private PostgreSQL server on the postgresql server,
// listening on its address as the tutorial configures it
// (listen_addresses, an md5 line for 192.168.0.0/24 in pg_hba.conf), and
// runs the tutorial's SQL. It fails t when PostgreSQL is missing: check
// PostgresAvailable first to skip instead.
func (e *Env) StartPostgres(t testing.TB) {
	t.Helper()
	if err := PostgresAvailable(); err != nil {
		t.Fatal(err)
	}
	bin, _ := pgBinDir()
	pg, _ := user.Lookup("postgres")
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "vda-mh-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{dir, data, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	asPG := func(name string, args ...string) *exec.Cmd {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	if out, err := asPG(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth-local=trust",
		"--auth-host=md5", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintln(hba, "host    all             all             192.168.0.0/24          md5")
	if cerr := hba.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	h := e.Host("postgresql")
	e.StartProgram(t, "postgresql", "postgresql", "runuser", "-u", "postgres", "--", filepath.Join(bin, "postgres"),
		"-D", data, "-c", "listen_addresses="+h.IP, "-c", "port=5432", "-c", "unix_socket_directories="+sock,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=200")
	psql := func(sql string) error {
		out, err := asPG(filepath.Join(bin, "psql"), "-h", sock, "-p", "5432", "-U", "postgres", "-d", "postgres",
			"-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for psql("select 1") != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("postgres did not start: %v", psql("select 1"))
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The tutorial's SQL, as written.
	for _, sql := range []string{
		"create database vda_db;",
		"create user vda_user with encrypted password 'vda_password';",
		"grant all privileges on database vda_db to vda_user;",
	} {
		if err := psql(sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}
