/** JMH benchmarks and heap measurements of the router's parts; not shipped. */
package dev.bbr.benchmarks;
