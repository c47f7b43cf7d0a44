/** The Envoy ext_proc protocol: one {@link dev.bbr.server.extproc.RouterStream} per HTTP request. */
package dev.bbr.server.extproc;
