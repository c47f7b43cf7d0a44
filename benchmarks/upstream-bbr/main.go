// Command upstream-bbr runs the upstream Go body-based router's ext_proc handler
// (sigs.k8s.io/gateway-api-inference-extension pkg/bbr/handlers, v1.5.0) without a cluster,
// as a benchmark baseline. The model header comes from upstream's own bodyfieldtoheader plugin;
// the base-model header comes from a map filled from the allowlist ConfigMap files, because
// upstream's AdaptersStore can only be filled by its controller-runtime reconciler
// (its update methods are unexported).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"

	extProcPb "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthPb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"sigs.k8s.io/gateway-api-inference-extension/pkg/bbr/framework"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/bbr/handlers"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/bbr/plugins/bodyfieldtoheader"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/plugin"
)

var version = "dev"

// baseModelLookup sets X-Gateway-Base-Model-Name like upstream's base-model-to-header plugin:
// adapter -> its base model, base model -> itself, anything else -> "".
type baseModelLookup struct{ toBase map[string]string }

func (p *baseModelLookup) TypedName() plugin.TypedName {
	return plugin.TypedName{Type: "file-base-model-to-header", Name: "file-base-model-to-header"}
}

func (p *baseModelLookup) ProcessRequest(_ context.Context, _ *framework.CycleState, r *framework.InferenceRequest) error {
	raw, ok := r.Body["model"]
	if !ok {
		return nil
	}
	r.SetHeader("X-Gateway-Base-Model-Name", p.toBase[strings.TrimSpace(fmt.Sprintf("%v", raw))])
	return nil
}

func loadAllowlist(dir string) (map[string]string, error) {
	m := map[string]string{}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal(b, &cm); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		base := strings.TrimSpace(cm.Data["baseModel"])
		if base == "" {
			continue
		}
		m[base] = base
		var adapters []string
		if err := yaml.Unmarshal([]byte(cm.Data["adapters"]), &adapters); err != nil {
			return nil, fmt.Errorf("%s adapters: %w", f, err)
		}
		for _, a := range adapters {
			m[strings.TrimSpace(a)] = base
		}
	}
	return m, nil
}

func main() {
	port := flag.Int("grpc-port", 9004, "ext_proc port (plaintext h2c)")
	healthPort := flag.Int("grpc-health-port", 0, "separate health port (0: health on the ext_proc port too)")
	streaming := flag.Bool("streaming", true, "FULL_DUPLEX_STREAMED (upstream's --streaming); false = BUFFERED")
	dir := flag.String("allowlist-dir", "", "directory of allowlist ConfigMap YAML files")
	showVersion := flag.Bool("version", false, "print version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	toBase := map[string]string{}
	if *dir != "" {
		var err error
		if toBase, err = loadAllowlist(*dir); err != nil {
			log.Fatal(err)
		}
	}
	modelHeader, err := bodyfieldtoheader.NewBodyFieldToHeaderPlugin("model", "X-Gateway-Model-Name")
	if err != nil {
		log.Fatal(err)
	}
	reqPlugins := []framework.RequestProcessor{modelHeader, &baseModelLookup{toBase: toBase}}

	hs := health.NewServer()
	hs.SetServingStatus("", healthPb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(extProcPb.ExternalProcessor_ServiceDesc.ServiceName, healthPb.HealthCheckResponse_SERVING)

	srv := grpc.NewServer()
	extProcPb.RegisterExternalProcessorServer(srv, handlers.NewServer(*streaming, reqPlugins, nil))
	if *healthPort == 0 {
		healthPb.RegisterHealthServer(srv, hs)
	} else {
		hsrv := grpc.NewServer()
		healthPb.RegisterHealthServer(hsrv, hs)
		hl, err := net.Listen("tcp", fmt.Sprintf(":%d", *healthPort))
		if err != nil {
			log.Fatal(err)
		}
		go func() { log.Fatal(hsrv.Serve(hl)) }()
	}
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("upstream-bbr %s listening on :%d streaming=%v models=%d", version, *port, *streaming, len(toBase))
	log.Fatal(srv.Serve(l))
}
