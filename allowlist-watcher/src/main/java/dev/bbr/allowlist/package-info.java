/** The model allowlist: which model names the router serves, and the base model each resolves to. */
package dev.bbr.allowlist;
