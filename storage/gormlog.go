package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	gormlogger "gorm.io/gorm/logger"
)

// slowQuery is the duration above which a statement is logged.
const slowQuery = 500 * time.Millisecond

// gormLogger routes gorm's own messages to slog. It never logs statement
// values: they include token signatures, secret hashes and personal data.
// Failed statements are not logged here either; the error is returned to the
// caller, who decides.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

func newGormLogger(l *slog.Logger) gormLogger { return gormLogger{log: l, slow: slowQuery} }

func (l gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "database: "+fmt.Sprintf(msg, args...))
}

func (l gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "database: "+fmt.Sprintf(msg, args...))
}

func (l gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, "database: "+fmt.Sprintf(msg, args...))
}

// Trace logs slow statements, with placeholders in place of values (see
// ParamsFilter).
func (l gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), _ error) {
	elapsed := time.Since(begin)
	if elapsed < l.slow || !l.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	stmt, rows := fc()
	l.log.WarnContext(ctx, "slow database statement", "elapsed", elapsed, "rows", rows, "sql", stmt)
}

// ParamsFilter drops the statement's values, so that the SQL gorm hands to
// Trace keeps its placeholders.
func (l gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
