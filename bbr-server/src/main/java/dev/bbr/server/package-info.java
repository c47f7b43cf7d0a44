/** Start-up and shutdown: {@link dev.bbr.server.Main} wires every part by hand in {@link dev.bbr.server.BbrApp}. */
package dev.bbr.server;
