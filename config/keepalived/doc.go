// Package keepalived reads keepalived.conf into a small syntax tree of
// keywords and blocks, each carrying its file and line, so that an importer can
// map it to vrrplb's configuration and point at the line of anything it cannot
// carry over. It follows keepalived's own lexical rules (comments with '!' or
// '#', double quotes, braces on the same or the next line, include files with
// globs relative to the including file, "@ID" conditional lines, "$NAME=TEXT"
// parameters) and marks the keywords keepalived 2.2.7 would not know, which
// keepalived logs and skips, so the importer reports them instead of failing.
// It does not interpret values: that is the converter's job, in config/convert.
package keepalived
