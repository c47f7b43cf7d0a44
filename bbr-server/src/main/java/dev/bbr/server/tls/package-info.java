/** TLS for the ext_proc port: a self-signed certificate made at start, or PEM files reloaded on change. */
package dev.bbr.server.tls;
