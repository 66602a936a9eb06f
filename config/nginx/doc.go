// Package nginx reads an nginx configuration into a small syntax tree of
// directives and blocks, each carrying its file and line, so that an importer can
// map its stream{} proxy to vrrplb's frontends. It follows nginx's lexical rules
// (';' ends a directive, '#' comments, single and double quotes with backslash
// escapes, include with globs relative to the main file's directory) and rejects
// directives nginx would not know in the contexts vrrplb imports (the main
// context, stream, its upstream and server blocks). Other blocks (http, events,
// mail) are kept but not checked. It does not interpret values: that is the
// converter's job, in config/convert.
package nginx
