// Package sqltest gives tests fresh, private SQL databases for the
// sqlstore backends: a file in t.TempDir() for SQLite, and a schema or
// database of its own on the servers named by VDA_TEST_POSTGRES_URL and
// VDA_TEST_MYSQL_URL (which scripts/sqlservers starts; scripts/test runs
// it). Without those variables the PostgreSQL and MySQL helpers skip the
// test.
package sqltest
