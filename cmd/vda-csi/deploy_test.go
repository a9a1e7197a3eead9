package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The vda-csi arguments in deploy/kubernetes are flags this binary
// accepts, with a mode it knows (deploy's own tests check the rest).
func TestDeployManifestArgs(t *testing.T) {
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	require.NoError(t, err)
	modes := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
			var spec *corev1.PodSpec
			switch {
			case strings.Contains(doc, "\nkind: Deployment"):
				var d appsv1.Deployment
				require.NoError(t, yaml.Unmarshal([]byte(doc), &d), f)
				spec = &d.Spec.Template.Spec
			case strings.Contains(doc, "\nkind: DaemonSet"):
				var d appsv1.DaemonSet
				require.NoError(t, yaml.Unmarshal([]byte(doc), &d), f)
				spec = &d.Spec.Template.Spec
			default:
				continue
			}
			for _, c := range spec.Containers {
				if c.Name != "vda-csi" {
					continue
				}
				require.Empty(t, c.Command, "%s: the image's entrypoint is vda-csi", f)
				fs, o := newFlags(io.Discard)
				require.NoError(t, fs.Parse(c.Args), "%s: %v", f, c.Args)
				require.Zero(t, fs.NArg(), "%s: stray arguments %v", f, fs.Args())
				require.False(t, o.portal.Insecure, "%s: the portal is reached with mutual TLS", f)
				modes[o.mode] = true
			}
		}
	}
	require.Equal(t, map[string]bool{"controller": true, "node": true}, modes)
}
