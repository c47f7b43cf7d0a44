package dev.bbr.server.doctor;

import java.util.List;
import java.util.Objects;

/**
 * One misconfiguration.
 *
 * @param code stable identifier (documented in docs/operations.md); tests and scripts match on it
 * @param objects the objects involved, the one to change first
 * @param impact what goes wrong for requests because of it
 * @param fix the concrete change that removes it
 */
record Finding(Severity severity, String code, List<ObjectRef> objects, String impact, String fix) {
  Finding {
    Objects.requireNonNull(severity, "severity");
    Objects.requireNonNull(code, "code");
    objects = List.copyOf(objects);
    Objects.requireNonNull(impact, "impact");
    Objects.requireNonNull(fix, "fix");
  }
}
