package dev.bbr.allowlist;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Builds an {@link Allowlist} from mappings: a pure function, no I/O, no clock, no logging.
 *
 * <p>Resolution is deterministic whatever order the mappings arrive in. Mappings are ordered by
 * creation time, then source name. A name declared as a base model anywhere resolves to itself; an
 * adapter claimed by several base models resolves to the first in that order. Each losing claim is
 * reported as a {@link Conflict}. Several mappings may name the same base model: their adapters are
 * merged, so an adapter stays routable while any of them lists it.
 */
public final class AllowlistBuilder {
  private static final Comparator<ModelMapping> RESOLUTION_ORDER =
      Comparator.comparing(ModelMapping::created).thenComparing(ModelMapping::source);

  private AllowlistBuilder() {}

  /** Builds the snapshot for {@code mappings}. */
  public static Allowlist build(Collection<ModelMapping> mappings) {
    List<ModelMapping> ordered = new ArrayList<>(mappings);
    ordered.sort(RESOLUTION_ORDER);

    Map<String, String> baseModelByName = new HashMap<>();
    Map<String, String> sourceByName = new HashMap<>();
    Set<String> baseModels = new LinkedHashSet<>();
    for (ModelMapping m : ordered) {
      if (baseModels.add(m.baseModel())) {
        baseModelByName.put(m.baseModel(), m.baseModel());
        sourceByName.put(m.baseModel(), m.source());
      }
    }

    List<Conflict> conflicts = new ArrayList<>();
    for (ModelMapping m : ordered) {
      for (String adapter : m.adapters()) {
        String current = baseModelByName.get(adapter);
        if (current == null) {
          baseModelByName.put(adapter, m.baseModel());
          sourceByName.put(adapter, m.source());
        } else if (!current.equals(m.baseModel())) {
          conflicts.add(
              new Conflict(adapter, current, sourceByName.get(adapter), m.baseModel(), m.source()));
        }
      }
    }
    return new Allowlist(baseModelByName, baseModels, ordered, conflicts);
  }
}
