/** The command line: flags, defaults and their validation. */
package dev.bbr.server.config;
