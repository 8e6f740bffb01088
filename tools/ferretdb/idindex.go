package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the same pure-Go SQLite driver FerretDB uses
)

// FerretDB v1.24.2 creates each collection's unique _id index on the SQLite
// expression `_ferretdb_sjson->"_id"`, but looks documents up by
// `_ferretdb_sjson->'$._id'`. SQLite uses an expression index only for the
// very same expression, so every lookup by _id scans the whole table.
//
// indexIDLookups adds, to every collection table, an index on the expression
// the lookups use, so that a filter on _id alone is an index search as it is
// in MongoDB. The index is invisible to FerretDB and its clients: it only
// changes SQLite's query plan (from the next write on, FerretDB's connections
// see it). Uniqueness is still enforced by FerretDB's own index.
func indexIDLookups(ctx context.Context, dir string, every time.Duration, logger *slog.Logger) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()

	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, file := range files {
			if err := indexFile(ctx, file); err != nil && ctx.Err() == nil {
				logger.Debug("id lookup index", "file", file, "error", err)
			}
		}

		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func indexFile(ctx context.Context, file string) error {
	// A fresh connection per pass: FerretDB deletes and recreates the file when a database is dropped.
	// mode=rw: a file dropped since the glob stays dropped instead of coming back empty.
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()

	rows, err := db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || '__id_lookup')`)
	if err != nil {
		return err // no collection yet: the metadata table does not exist
	}

	var tables []string
	for rows.Next() {
		var table string
		if err = rows.Scan(&table); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, table)
	}
	rows.Close()

	for _, table := range tables {
		quoted := `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
		index := `"` + strings.ReplaceAll(table+"__id_lookup", `"`, `""`) + `"`
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (_ferretdb_sjson->'$._id')`, index, quoted)
		if _, err = db.ExecContext(ctx, q); err != nil {
			return err
		}
	}

	return nil
}
