package dev.bbr.server.doctor;

/** How bad a finding is: {@code ERROR} means requests fail or go to the wrong pool today. */
enum Severity {
  ERROR,
  WARNING,
  INFO
}
