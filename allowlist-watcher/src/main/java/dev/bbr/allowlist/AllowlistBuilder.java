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
 * creation time, then source name, and every name goes to its oldest claim, whether that claim
 * declares it a base model or lists it as an adapter: a ConfigMap created later, in the same or
 * another namespace, cannot take over a name that already routes. Each losing claim is reported as
 * a {@link Conflict}. Several mappings may name the same base model: their adapters are merged, so
 * an adapter stays routable while any of them lists it.
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
    List<Conflict> conflicts = new ArrayList<>();
    for (ModelMapping m : ordered) {
      claim(m.baseModel(), m, baseModelByName, sourceByName, conflicts);
      for (String adapter : m.adapters()) {
        claim(adapter, m, baseModelByName, sourceByName, conflicts);
      }
    }
    // A base model is a name that resolves to itself; one whose name an older mapping lists as an
    // adapter is not (its adapters still resolve to it, a name no older claim holds).
    Set<String> baseModels = new LinkedHashSet<>();
    for (ModelMapping m : ordered) {
      if (m.baseModel().equals(baseModelByName.get(m.baseModel()))) {
        baseModels.add(m.baseModel());
      }
    }
    return new Allowlist(baseModelByName, baseModels, ordered, conflicts);
  }

  /** Gives {@code name} to {@code m}'s base model unless an older mapping claimed it otherwise. */
  private static void claim(String name, ModelMapping m, Map<String, String> baseModelByName,
      Map<String, String> sourceByName, List<Conflict> conflicts) {
    String current = baseModelByName.putIfAbsent(name, m.baseModel());
    if (current == null) {
      sourceByName.put(name, m.source());
    } else if (!current.equals(m.baseModel())) {
      conflicts.add(new Conflict(name, current, sourceByName.get(name), m.baseModel(), m.source()));
    }
  }
}
