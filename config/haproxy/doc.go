// Package haproxy reads haproxy.cfg into a small syntax tree of sections and
// keyword lines, each carrying its file and line, so that an importer can map
// its TCP proxies to vrrplb's frontends. It follows haproxy's lexical rules ('#'
// comments, single and double quotes, backslash escapes) and rejects, in the
// proxy sections (defaults, frontend, backend, listen), keywords haproxy would
// not know. The global section and the other sections (peers, resolvers,
// userlist, ...) are kept but not checked. It does not interpret values: that is
// the converter's job, in config/convert.
package haproxy
