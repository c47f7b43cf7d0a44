/** {@code doctor}: reads the cluster objects routing depends on and names each misconfiguration. */
package dev.bbr.server.doctor;
