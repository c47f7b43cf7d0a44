/**
 * Load generators that speak ext_proc the way Envoy does, a no-op ext_proc server (the floor the
 * router is compared with), and the memory run; not shipped.
 */
package dev.bbr.benchmarks.load;
