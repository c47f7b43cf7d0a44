{{/* Chart name. */}}
{{- define "bbr.name" -}}
{{- include "bbr.upstreamValues" . -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name: the Service, Deployment, ServiceAccount and RBAC objects use it. */}}
{{- define "bbr.fullname" -}}
{{- include "bbr.upstreamValues" . -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "bbr.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bbr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bbr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bbr.labels" -}}
helm.sh/chart: {{ include "bbr.chart" . }}
{{ include "bbr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: body-based-router
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "bbr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bbr.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "bbr.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* true when ext_proc serves TLS. */}}
{{- define "bbr.tlsEnabled" -}}
{{- if ne .Values.tls.mode "disabled" -}}true{{- end -}}
{{- end -}}

{{/* Name of the Secret mounted at /etc/bbr/tls, or "" when none is mounted. */}}
{{- define "bbr.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}
{{- required "tls.existingSecret is required with tls.mode=existingSecret" .Values.tls.existingSecret -}}
{{- else if eq .Values.tls.mode "certManager" -}}
{{- printf "%s-tls" (include "bbr.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "bbr.certDir" -}}/etc/bbr/tls{{- end -}}

{{/* The namespace whose ConfigMaps are watched (when not all namespaces). */}}
{{- define "bbr.watchNamespace" -}}
{{- default .Release.Namespace .Values.allowlist.namespace -}}
{{- end -}}

{{- define "bbr.gatewayNamespace" -}}
{{- default .Release.Namespace .Values.inferenceGateway.namespace -}}
{{- end -}}

{{/* In-cluster DNS name of the router Service. */}}
{{- define "bbr.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "bbr.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "bbr.grpcAppProtocol" -}}
{{- if .Values.service.grpcAppProtocol -}}
{{- .Values.service.grpcAppProtocol -}}
{{- else if include "bbr.tlsEnabled" . -}}
HTTP2
{{- else -}}
kubernetes.io/h2c
{{- end -}}
{{- end -}}

{{/*
Object name for a model (ConfigMap and HTTPRoute): <fullname>-<model>, lowercased, every run of
characters outside [a-z0-9] turned into '-'; when longer than 63 characters it is truncated and
suffixed with 8 hex characters of the model name's SHA-256, so distinct long names stay distinct.
Call with (dict "root" $ "model" $model).
*/}}
{{- define "bbr.modelObjectName" -}}
{{- $root := .root -}}
{{- $slug := regexReplaceAll "[^a-z0-9]+" (lower .model.name) "-" | trimAll "-" -}}
{{- if not $slug -}}
{{- $slug = printf "model-%s" (sha256sum .model.name | trunc 8) -}}
{{- end -}}
{{- $base := printf "%s-%s" (include "bbr.fullname" $root) $slug | trimSuffix "-" -}}
{{- if gt (len $base) 63 -}}
{{- printf "%s-%s" ($base | trunc 54 | trimSuffix "-") (sha256sum .model.name | trunc 8) -}}
{{- else -}}
{{- $base -}}
{{- end -}}
{{- end -}}

{{/* Fails on settings the schema cannot express. */}}
{{- define "bbr.validate" -}}
{{- include "bbr.upstreamValues" . -}}
{{- if and .Values.allNamespaces .Values.allowlist.namespace -}}
{{- fail "allowlist.namespace and allNamespaces are exclusive (the router rejects --namespace with --all-namespaces)" -}}
{{- end -}}
{{- if not (dig "limits" "memory" "" .Values.resources) -}}
{{- fail "resources.limits.memory is required: the JVM heap is sized from it (-XX:MaxRAMPercentage)" -}}
{{- end -}}
{{- if and (eq .Values.tls.mode "certManager") (not .Values.tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.issuerRef.name is required with tls.mode=certManager" -}}
{{- end -}}
{{- if and (has .Values.provider.istio.operation (list "INSERT_BEFORE" "INSERT_AFTER")) (not .Values.provider.istio.anchorSubFilter) (eq .Values.provider.name "istio") -}}
{{- fail (printf "provider.istio.anchorSubFilter is required with provider.istio.operation=%s" .Values.provider.istio.operation) -}}
{{- end -}}
{{- if and (eq .Values.provider.name "envoy-gateway") (include "bbr.tlsEnabled" .) (not .Values.provider.envoyGateway.caCertificateRefs) -}}
{{- fail "provider envoy-gateway with TLS needs provider.envoyGateway.caCertificateRefs (BackendTLSPolicy cannot skip verification): use tls.mode certManager or existingSecret with a CA ConfigMap, or tls.mode disabled" -}}
{{- end -}}
{{- if and (eq .Values.provider.name "envoy-gateway") (eq .Values.tls.mode "selfSigned") -}}
{{- fail "provider envoy-gateway with tls.mode=selfSigned cannot work: the router's self-signed certificate is made at start, so no CA ConfigMap can verify it (BackendTLSPolicy cannot skip verification). Use tls.mode certManager or existingSecret with provider.envoyGateway.caCertificateRefs, or tls.mode disabled" -}}
{{- end -}}
{{- if .Values.provider.gke.poolHealthCheckPath -}}
{{- fail "provider.gke.poolHealthCheckPath was removed: GAIE's inferencepool chart (provider.name=gke) already renders a HealthCheckPolicy on each InferencePool, and a second one on the same target conflicts. Remove the value; set the path in the inferencepool chart if /health is not right" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (eq .Values.provider.name "gke") (not .Values.networkPolicy.gateway.extraFrom) -}}
{{- fail "provider gke with networkPolicy.enabled: the load balancer calls the router from the region's proxy-only subnet, not from a pod; add it to networkPolicy.gateway.extraFrom, e.g. [{ipBlock: {cidr: 10.129.0.0/23}}] (gcloud compute networks subnets list --filter=purpose=REGIONAL_MANAGED_PROXY)" -}}
{{- end -}}
{{- if not .Values.image.repository -}}
{{- fail "image.repository is required: no public image is published. Build it with scripts/build-image.sh (or the Dockerfile), push it to a registry your nodes pull from, and set image.repository (and image.tag or image.digest)" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) -}}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable (null the other)" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range .Values.models -}}
{{- $n := include "bbr.modelObjectName" (dict "root" $ "model" .) -}}
{{- if hasKey $seen $n -}}
{{- fail (printf "models: %q and %q map to the same object name %s" (get $seen $n) .name $n) -}}
{{- end -}}
{{- $_ := set $seen $n .name -}}
{{- end -}}
{{- end -}}

{{/*
Values of the upstream chart (gateway-api-inference-extension config/charts/body-based-routing),
so that its values file installs this chart unchanged. Each one given is copied onto this chart's
equivalent (README, "Upstream chart values"); that equivalent must be at its default or equal,
else the render fails. This writes into .Values, idempotently, so that every template reads the
mapped value: the name helpers and bbr.validate call it first, and so does every template that
reads a mapped value before calling them.
*/}}
{{- define "bbr.upstreamValues" -}}
{{- $v := .Values -}}
{{- $b := $v.bbr | default dict -}}
{{- $m := list
  (list "bbr.name" $b "name" $v "nameOverride" "nameOverride" "")
  (list "bbr.replicas" $b "replicas" $v "replicaCount" "replicaCount" 2)
  (list "bbr.image.tag" ($b.image | default dict) "tag" $v.image "tag" "image.tag" "")
  (list "bbr.image.pullPolicy" ($b.image | default dict) "pullPolicy" $v.image "pullPolicy" "image.pullPolicy" "IfNotPresent")
  (list "bbr.port" $b "port" $v.ports "grpc" "ports.grpc" 9004)
  (list "bbr.healthCheckPort" $b "healthCheckPort" $v.ports "health" "ports.health" 9005)
  (list "bbr.multiNamespace" $b "multiNamespace" $v "allNamespaces" "allNamespaces" false)
  (list "bbr.flags.v" ($b.flags | default dict) "v" $v.router "verbosity" "router.verbosity" 0)
  (list "provider.istio.envoyFilter.operation" ($v.provider.istio.envoyFilter | default dict) "operation" $v.provider.istio "operation" "provider.istio.operation" "INSERT_FIRST")
  (list "provider.istio.envoyFilter.anchorSubFilter" ($v.provider.istio.envoyFilter | default dict) "anchorSubFilter" $v.provider.istio "anchorSubFilter" "provider.istio.anchorSubFilter" "")
-}}
{{- $img := $b.image | default dict -}}
{{- if hasKey $img "repository" -}}
{{- $repo := $img.repository -}}
{{- with $img.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end -}}
{{- $m = append $m (list "bbr.image.registry/repository" (dict "x" $repo) "x" $v.image "repository" "image.repository" "") -}}
{{- else if $img.registry -}}
{{- fail "bbr.image.registry needs bbr.image.repository (the image is registry/repository); or set image.repository" -}}
{{- end -}}
{{- range $m -}}
{{- $from := index . 1 -}}
{{- $to := index . 3 -}}
{{- if hasKey $from (index . 2) -}}
{{- $new := get $from (index . 2) -}}
{{- $cur := get $to (index . 4) -}}
{{- $def := index . 6 -}}
{{- if and (ne (toString $cur) (toString $def)) (ne (toString $cur) (toString $new)) -}}
{{- fail (printf "%s=%v contradicts %s=%v: give one of them (%s is the upstream chart's name for %s)" (index . 0) $new (index . 5) $cur (index . 0) (index . 5)) -}}
{{- end -}}
{{- $_ := set $to (index . 4) $new -}}
{{- end -}}
{{- end -}}
{{- /* Flags this chart renders from its own values: given in bbr.flags they would be given twice. */ -}}
{{- $owned := dict "grpc-port" "ports.grpc (or bbr.port)" "grpc-health-port" "ports.health (or bbr.healthCheckPort)"
  "metrics-port" "ports.metrics" "streaming" "router.streaming" "secure-serving" "tls.mode"
  "cert-path" "tls.mode" "log-format" "router.logFormat" "namespace" "allowlist.namespace"
  "all-namespaces" "allNamespaces (or bbr.multiNamespace)" "configmap-label" "allowlist.configMapLabels"
  "unknown-model" "router.unknownModel" "missing-model" "router.missingModel"
  "max-buffered-bytes" "router.maxBufferedBytes" "max-buffered-bytes-total" "router.maxBufferedBytesTotal"
  "body-timeout" "router.bodyTimeout" "drain-timeout" "router.drainTimeoutSeconds"
  "shutdown-delay" "router.shutdownDelaySeconds" "max-concurrent-streams" "router.maxConcurrentStreams"
  "tracing" "bbr.tracing.enabled" "plugin" "bbr.plugins"
  "metrics-endpoint-auth" "metrics.endpointAuth" -}}
{{- range $flag, $_ := $b.flags -}}
{{- if hasKey $owned $flag -}}
{{- fail (printf "bbr.flags.%s: this chart renders --%s from %s; set that instead" $flag $flag (get $owned $flag)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
One line per upstream chart value given that has an equivalent here (README, "Upstream chart
values"); bbr.plugins and bbr.tracing have none and print nothing.
*/}}
{{- define "bbr.upstreamNotes" -}}
{{- $b := .Values.bbr | default dict -}}
{{- $img := $b.image | default dict -}}
{{- $ef := .Values.provider.istio.envoyFilter | default dict -}}
{{- $lines := list -}}
{{- range $key, $ours := dict "name" "nameOverride" "replicas" "replicaCount" "port" "ports.grpc" "healthCheckPort" "ports.health" "multiNamespace" "allNamespaces" -}}
{{- if hasKey $b $key }}{{ $lines = append $lines (printf "bbr.%s is deprecated: use %s" $key $ours) }}{{ end -}}
{{- end -}}
{{- range $key, $ours := dict "registry" "image.repository (registry/repository)" "repository" "image.repository" "tag" "image.tag" "pullPolicy" "image.pullPolicy" -}}
{{- if hasKey $img $key }}{{ $lines = append $lines (printf "bbr.image.%s is deprecated: use %s" $key $ours) }}{{ end -}}
{{- end -}}
{{- range $flag, $value := $b.flags -}}
{{- if eq $flag "v" }}{{ $lines = append $lines "bbr.flags.v is deprecated: use router.verbosity" }}
{{- else }}{{ $lines = append $lines (printf "bbr.flags.%s is deprecated: use router.extraArgs (--%s=%v)" $flag $flag $value) }}{{ end -}}
{{- end -}}
{{- range $key := list "operation" "anchorSubFilter" -}}
{{- if hasKey $ef $key }}{{ $lines = append $lines (printf "provider.istio.envoyFilter.%s is deprecated: use provider.istio.%s" $key $key) }}{{ end -}}
{{- end -}}
{{- range $lines }}
   {{ . }}
{{- end -}}
{{- end -}}
