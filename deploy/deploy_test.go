// Package deploy holds VDA's deployment files (deploy/kubernetes, the
// Dockerfile); its tests check them.
package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	storagev1beta1 "k8s.io/api/storage/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/vda-io/vda/csi"
)

const manifestDir = "kubernetes"

// object is one decoded YAML document.
type object struct {
	file string
	obj  any
}

func (o object) meta() metav1.Object { return o.obj.(metav1.Object) }

// The snapshot API's objects (snapshot.storage.k8s.io/v1, CRDs of
// kubernetes-csi/external-snapshotter), with every field they have, so
// that strict decoding catches a misspelt one.
type volumeSnapshotClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Driver            string            `json:"driver"`
	DeletionPolicy    string            `json:"deletionPolicy"`
	Parameters        map[string]string `json:"parameters,omitempty"`
}

type volumeSnapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Source struct {
			PersistentVolumeClaimName *string `json:"persistentVolumeClaimName,omitempty"`
			VolumeSnapshotContentName *string `json:"volumeSnapshotContentName,omitempty"`
		} `json:"source"`
		VolumeSnapshotClassName *string `json:"volumeSnapshotClassName,omitempty"`
	} `json:"spec"`
}

// newObject is the typed object of apiVersion/kind: every kind the
// manifests may use.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, true
	case "v1 Pod":
		return &corev1.Pod{}, true
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, true
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, true
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, true
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, true
	case "storage.k8s.io/v1 CSIDriver":
		return &storagev1.CSIDriver{}, true
	case "storage.k8s.io/v1 StorageClass":
		return &storagev1.StorageClass{}, true
	case "storage.k8s.io/v1beta1 VolumeAttributesClass":
		return &storagev1beta1.VolumeAttributesClass{}, true
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, true
	case "snapshot.storage.k8s.io/v1 VolumeSnapshotClass":
		return &volumeSnapshotClass{}, true
	case "snapshot.storage.k8s.io/v1 VolumeSnapshot":
		return &volumeSnapshot{}, true
	}
	return nil, false
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// manifestFiles is every YAML file under deploy/kubernetes but the
// kustomization.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(manifestDir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".yaml") && e.Name() != "kustomization.yaml" {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files)
	return files
}

// decode reads every document of the manifests strictly (an unknown or
// misspelt field is an error) into its typed object.
func decode(t *testing.T) []object {
	t.Helper()
	var objs []object
	for _, f := range manifestFiles(t) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, doc := range docSep.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			require.NoError(t, yaml.Unmarshal([]byte(doc), &tm), "%s document %d", f, i)
			obj, ok := newObject(tm.APIVersion, tm.Kind)
			require.True(t, ok, "%s document %d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), obj), "%s document %d (%s)", f, i, tm.Kind)
			objs = append(objs, object{file: f, obj: obj})
		}
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func all[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := decode(t)
	seen := map[string]string{}
	for _, o := range objs {
		m := o.meta()
		require.NotEmpty(t, m.GetName(), o.file)
		key := fmt.Sprintf("%T %s/%s", o.obj, m.GetNamespace(), m.GetName())
		require.NotContains(t, seen, key, "%s: %s defined twice (also in %s)", o.file, key, seen[key])
		seen[key] = o.file
	}
	// Strictness is what catches typos: prove it does.
	var d appsv1.Deployment
	require.Error(t, yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 1\n"), &d))
}

func TestKustomizationListsEveryBaseManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(manifestDir, "kustomization.yaml"))
	require.NoError(t, err)
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	require.NoError(t, yaml.UnmarshalStrict(b, &k))
	var base []string
	for _, f := range manifestFiles(t) {
		if filepath.Dir(f) == manifestDir {
			base = append(base, filepath.Base(f))
		}
	}
	slices.Sort(base)
	require.Equal(t, base, k.Resources, "kustomization resources: every base manifest, in order")
	require.Len(t, k.Images, 1)
	for _, ds := range podSpecs(decode(t)) {
		c := driverContainer(t, ds.name, ds.spec)
		require.Equal(t, k.Images[0].Name, strings.Split(c.Image, ":")[0], "%s: image the kustomization sets", ds.name)
	}
}

type namedSpec struct {
	name string
	ns   string
	spec *corev1.PodSpec
}

func podSpecs(objs []object) []namedSpec {
	var out []namedSpec
	for _, d := range all[*appsv1.Deployment](objs) {
		out = append(out, namedSpec{"Deployment " + d.Name, d.Namespace, &d.Spec.Template.Spec})
	}
	for _, d := range all[*appsv1.DaemonSet](objs) {
		out = append(out, namedSpec{"DaemonSet " + d.Name, d.Namespace, &d.Spec.Template.Spec})
	}
	return out
}

// driverContainer is the vda-csi container of a pod spec.
func driverContainer(t *testing.T, name string, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == "vda-csi" {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("%s: no vda-csi container", name)
	return nil
}

// flag is the value of --name=value in args, "" if absent.
func flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// mountOf is the volume mounted at dir in c, and the mount.
func mountOf(c *corev1.Container, dir string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func TestManifestsCrossReferences(t *testing.T) {
	objs := decode(t)

	// The CSIDriver and StorageClasses name the driver csi/ reports.
	drivers := all[*storagev1.CSIDriver](objs)
	require.Len(t, drivers, 1)
	require.Equal(t, csi.DriverName, drivers[0].Name)
	require.True(t, *drivers[0].Spec.AttachRequired, "ControllerPublish adds the host to the exporter: attach is required")
	classes := all[*storagev1.StorageClass](objs)
	require.NotEmpty(t, classes)
	for _, sc := range classes {
		require.Equal(t, csi.DriverName, sc.Provisioner, "StorageClass %s", sc.Name)
		require.NoError(t, csi.CheckParameters(sc.Parameters), "StorageClass %s parameters", sc.Name)
		require.True(t, *sc.AllowVolumeExpansion, "StorageClass %s: the driver expands volumes", sc.Name)
		for _, at := range sc.AllowedTopologies {
			for _, e := range at.MatchLabelExpressions {
				require.Equal(t, csi.TopologyKey, e.Key, "StorageClass %s: allowedTopologies", sc.Name)
				require.NotEmpty(t, e.Values, sc.Name)
				for _, v := range e.Values {
					require.NoError(t, csi.ValidateLocation(v), "StorageClass %s", sc.Name)
				}
			}
		}
	}
	attrClasses := all[*storagev1beta1.VolumeAttributesClass](objs)
	require.NotEmpty(t, attrClasses, "a VolumeAttributesClass example")
	for _, c := range attrClasses {
		require.Equal(t, csi.DriverName, c.DriverName, "VolumeAttributesClass %s", c.Name)
		require.NotEmpty(t, c.Parameters, "VolumeAttributesClass %s", c.Name)
		require.NoError(t, csi.CheckMutableParameters(c.Parameters), "VolumeAttributesClass %s parameters", c.Name)
	}
	snapClasses := all[*volumeSnapshotClass](objs)
	require.NotEmpty(t, snapClasses, "a VolumeSnapshotClass example")
	for _, c := range snapClasses {
		require.Equal(t, csi.DriverName, c.Driver, "VolumeSnapshotClass %s", c.Name)
		require.Contains(t, []string{"Delete", "Retain"}, c.DeletionPolicy, "VolumeSnapshotClass %s", c.Name)
		require.Empty(t, c.Parameters, "VolumeSnapshotClass %s: the driver takes no snapshot parameters", c.Name)
	}

	// Namespaces, service accounts and roles that are referred to exist.
	namespaces := map[string]bool{}
	for _, n := range all[*corev1.Namespace](objs) {
		namespaces[n.Name] = true
	}
	sas := map[string]bool{}
	for _, sa := range all[*corev1.ServiceAccount](objs) {
		sas[sa.Namespace+"/"+sa.Name] = true
	}
	for _, o := range objs {
		ns := o.meta().GetNamespace()
		if _, isNS := o.obj.(*corev1.Namespace); !isNS && ns != "" && ns != "default" {
			require.True(t, namespaces[ns], "%s: %s in namespace %s that no manifest creates", o.file, o.meta().GetName(), ns)
		}
	}
	roles := map[string]bool{}
	for _, r := range all[*rbacv1.ClusterRole](objs) {
		roles["ClusterRole/"+r.Name] = true
	}
	for _, r := range all[*rbacv1.Role](objs) {
		roles["Role/"+r.Namespace+"/"+r.Name] = true
	}
	checkSubjects := func(what string, subjects []rbacv1.Subject) {
		require.NotEmpty(t, subjects, what)
		for _, s := range subjects {
			require.Equal(t, "ServiceAccount", s.Kind, what)
			require.True(t, sas[s.Namespace+"/"+s.Name], "%s: no ServiceAccount %s/%s", what, s.Namespace, s.Name)
		}
	}
	bound := map[string]bool{}
	for _, b := range all[*rbacv1.ClusterRoleBinding](objs) {
		require.Equal(t, "ClusterRole", b.RoleRef.Kind, b.Name)
		require.True(t, roles["ClusterRole/"+b.RoleRef.Name], "ClusterRoleBinding %s: no ClusterRole %s", b.Name, b.RoleRef.Name)
		checkSubjects("ClusterRoleBinding "+b.Name, b.Subjects)
		bound["ClusterRole/"+b.RoleRef.Name] = true
	}
	for _, b := range all[*rbacv1.RoleBinding](objs) {
		require.Equal(t, "Role", b.RoleRef.Kind, b.Name)
		key := "Role/" + b.Namespace + "/" + b.RoleRef.Name
		require.True(t, roles[key], "RoleBinding %s: no %s", b.Name, key)
		checkSubjects("RoleBinding "+b.Name, b.Subjects)
		bound[key] = true
	}
	for r := range roles {
		require.True(t, bound[r], "%s is bound to nobody", r)
	}

	// Pod specs: service accounts exist; every sidecar reaches vda-csi's
	// socket through the same volume.
	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range all[*corev1.ConfigMap](objs) {
		configMaps[cm.Namespace+"/"+cm.Name] = cm
	}
	specs := podSpecs(objs)
	require.Len(t, specs, 2, "the controller Deployment and the node DaemonSet")
	var sawController, sawNode bool
	for _, ps := range specs {
		spec := ps.spec
		require.True(t, sas[ps.ns+"/"+spec.ServiceAccountName], "%s: no ServiceAccount %q", ps.name, spec.ServiceAccountName)
		drv := driverContainer(t, ps.name, spec)
		ep, ok := flag(drv.Args, "endpoint")
		require.True(t, ok, "%s: vda-csi without --endpoint", ps.name)
		u, err := url.Parse(ep)
		require.NoError(t, err)
		require.Equal(t, "unix", u.Scheme, ps.name)
		sock := u.Path
		sockMount, ok := mountOf(drv, path.Dir(sock))
		require.True(t, ok, "%s: vda-csi does not mount its socket directory %s", ps.name, path.Dir(sock))
		for _, c := range spec.Containers {
			for _, e := range c.Env {
				if ref := e.ValueFrom; ref != nil && ref.ConfigMapKeyRef != nil {
					cm := configMaps[ps.ns+"/"+ref.ConfigMapKeyRef.Name]
					require.NotNil(t, cm, "%s: container %s: no ConfigMap %s", ps.name, c.Name, ref.ConfigMapKeyRef.Name)
					require.Contains(t, cm.Data, ref.ConfigMapKeyRef.Key, "%s: ConfigMap %s", ps.name, cm.Name)
				}
			}
			for _, m := range c.VolumeMounts {
				require.NotNil(t, volume(spec, m.Name), "%s: container %s mounts unknown volume %s", ps.name, c.Name, m.Name)
			}
			if c.Name == drv.Name {
				continue
			}
			addr, ok := flag(c.Args, "csi-address")
			require.True(t, ok, "%s: sidecar %s without --csi-address", ps.name, c.Name)
			require.Equal(t, sock, addr, "%s: sidecar %s", ps.name, c.Name)
			m, ok := mountOf(&c, path.Dir(addr))
			require.True(t, ok, "%s: sidecar %s does not mount %s", ps.name, c.Name, path.Dir(addr))
			require.Equal(t, sockMount.Name, m.Name, "%s: sidecar %s sees another socket directory", ps.name, c.Name)
		}
		// The liveness probe sidecar serves the port vda-csi's probe asks.
		if drv.LivenessProbe != nil {
			port := drv.LivenessProbe.HTTPGet.Port.String()
			var served bool
			for _, c := range spec.Containers {
				if ep, ok := flag(c.Args, "http-endpoint"); ok {
					for _, p := range drv.Ports {
						if p.Name == port && ep == fmt.Sprintf(":%d", p.ContainerPort) {
							served = true
						}
					}
				}
			}
			require.True(t, served, "%s: nothing serves vda-csi's liveness port %s", ps.name, port)
		}

		mode, _ := flag(drv.Args, "mode")
		switch mode {
		case "controller":
			sawController = true
			checkController(t, ps.name, spec, drv, sock)
		case "node":
			sawNode = true
			checkNode(t, ps.name, spec, drv, sock, sockMount.Name)
		default:
			t.Fatalf("%s: vda-csi --mode=%q", ps.name, mode)
		}
	}
	require.True(t, sawController && sawNode)
}

func checkController(t *testing.T, name string, spec *corev1.PodSpec, drv *corev1.Container, sock string) {
	var sidecars []string
	for _, c := range spec.Containers {
		if c.Name != drv.Name {
			sidecars = append(sidecars, strings.Split(path.Base(c.Image), ":")[0])
		}
	}
	for _, want := range []string{"csi-provisioner", "csi-attacher", "csi-resizer", "csi-snapshotter"} {
		require.Contains(t, sidecars, want, name)
	}
	// The driver has topology: the provisioner passes it, strictly (the
	// pod's node's location with WaitForFirstConsumer).
	for _, c := range spec.Containers {
		if strings.HasPrefix(path.Base(c.Image), "csi-provisioner:") {
			require.Contains(t, c.Args, "--feature-gates=Topology=true", name)
			require.Contains(t, c.Args, "--strict-topology", name)
		}
		// The driver has MODIFY_VOLUME: the resizer calls it for a
		// claim's VolumeAttributesClass once its feature gate is on.
		if strings.HasPrefix(path.Base(c.Image), "csi-resizer:") {
			require.Contains(t, c.Args, "--feature-gates=VolumeAttributesClass=true", name)
		}
	}
	// The portal's mTLS identity comes from the Secret.
	tlsVol := ""
	for _, f := range []string{"tls-ca", "tls-cert", "tls-key"} {
		p, ok := flag(drv.Args, f)
		require.True(t, ok, "%s: vda-csi without --%s", name, f)
		m, ok := mountOf(drv, path.Dir(p))
		require.True(t, ok, "%s: --%s=%s is not in a mounted directory", name, f, p)
		require.True(t, tlsVol == "" || tlsVol == m.Name, name)
		tlsVol = m.Name
	}
	v := volume(spec, tlsVol)
	require.NotNil(t, v.Secret, "%s: the TLS files come from a Secret", name)
	require.Equal(t, "vda-csi-portal-tls", v.Secret.SecretName, name)
	addr, ok := flag(drv.Args, "addr-port")
	require.True(t, ok, "%s: vda-csi without --addr-port", name)
	if env, ok := strings.CutPrefix(addr, "$("); ok {
		env = strings.TrimSuffix(env, ")")
		require.True(t, slices.ContainsFunc(drv.Env, func(e corev1.EnvVar) bool { return e.Name == env }),
			"%s: --addr-port uses $(%s), which vda-csi's env does not set", name, env)
	}
}

func checkNode(t *testing.T, name string, spec *corev1.PodSpec, drv *corev1.Container, sock, sockVol string) {
	require.NotNil(t, drv.SecurityContext)
	require.True(t, *drv.SecurityContext.Privileged, "%s: vda-csi connects and mounts: privileged", name)
	hostDir := func(mountPath string) (string, *corev1.VolumeMount) {
		m, ok := mountOf(drv, mountPath)
		require.True(t, ok, "%s: vda-csi does not mount %s", name, mountPath)
		v := volume(spec, m.Name)
		require.NotNil(t, v.HostPath, "%s: %s is not a host path", name, mountPath)
		return v.HostPath.Path, &m
	}
	for _, p := range []string{"/dev", "/sys", "/etc/nvme", "/etc/vda"} {
		hp, _ := hostDir(p)
		require.Equal(t, p, hp, name)
	}
	// The node's location (its topology segment) is read from the host.
	loc, ok := flag(drv.Args, "location-file")
	require.True(t, ok, "%s: vda-csi without --location-file", name)
	_, m := hostDir(path.Dir(loc))
	require.True(t, m.ReadOnly, "%s: %s", name, m.MountPath)
	kubelet, m := hostDir("/var/lib/kubelet")
	require.Equal(t, "/var/lib/kubelet", kubelet, name)
	require.NotNil(t, m.MountPropagation)
	require.Equal(t, corev1.MountPropagationBidirectional, *m.MountPropagation, "%s: kubelet dir", name)
	// The registrar tells kubelet where the socket is on the host: the
	// plugin directory's host path, with the driver's name.
	plugin := volume(spec, sockVol)
	require.NotNil(t, plugin.HostPath, name)
	require.Equal(t, "/var/lib/kubelet/plugins/"+csi.DriverName, plugin.HostPath.Path, name)
	var registrar bool
	for _, c := range spec.Containers {
		if reg, ok := flag(c.Args, "kubelet-registration-path"); ok {
			registrar = true
			require.Equal(t, path.Join(plugin.HostPath.Path, path.Base(sock)), reg, "%s: registration path", name)
			rm, ok := mountOf(&c, "/registration")
			require.True(t, ok, "%s: registrar without /registration", name)
			require.Equal(t, "/var/lib/kubelet/plugins_registry", volume(spec, rm.Name).HostPath.Path, name)
		}
	}
	require.True(t, registrar, "%s: no node-driver-registrar", name)
}

func TestExamplesReferToEachOther(t *testing.T) {
	objs := decode(t)
	classes := map[string]bool{}
	for _, sc := range all[*storagev1.StorageClass](objs) {
		classes[sc.Name] = true
	}
	attrClasses := map[string]bool{}
	for _, c := range all[*storagev1beta1.VolumeAttributesClass](objs) {
		attrClasses[c.Name] = true
	}
	claims := map[string]bool{}
	withAttrs := false
	for _, pvc := range all[*corev1.PersistentVolumeClaim](objs) {
		require.NotNil(t, pvc.Spec.StorageClassName, pvc.Name)
		require.True(t, classes[*pvc.Spec.StorageClassName], "PVC %s: no StorageClass %s", pvc.Name, *pvc.Spec.StorageClassName)
		claims[pvc.Namespace+"/"+pvc.Name] = true
		if n := pvc.Spec.VolumeAttributesClassName; n != nil {
			require.True(t, attrClasses[*n], "PVC %s: no VolumeAttributesClass %s", pvc.Name, *n)
			require.Nil(t, pvc.Spec.DataSource, "PVC %s: a volume made from a source takes no VolumeAttributesClass", pvc.Name)
			withAttrs = true
		}
	}
	require.True(t, withAttrs, "an example claim with a VolumeAttributesClass")
	snaps := map[string]bool{}
	snapClasses := map[string]bool{}
	for _, c := range all[*volumeSnapshotClass](objs) {
		snapClasses[c.Name] = true
	}
	for _, vs := range all[*volumeSnapshot](objs) {
		require.NotNil(t, vs.Spec.VolumeSnapshotClassName, vs.Name)
		require.True(t, snapClasses[*vs.Spec.VolumeSnapshotClassName], "VolumeSnapshot %s: no class %s", vs.Name, *vs.Spec.VolumeSnapshotClassName)
		require.NotNil(t, vs.Spec.Source.PersistentVolumeClaimName, vs.Name)
		require.True(t, claims[vs.Namespace+"/"+*vs.Spec.Source.PersistentVolumeClaimName], "VolumeSnapshot %s: no PVC %s", vs.Name, *vs.Spec.Source.PersistentVolumeClaimName)
		snaps[vs.Namespace+"/"+vs.Name] = true
	}
	require.NotEmpty(t, snaps, "a VolumeSnapshot example")
	sources := map[string]bool{}
	for _, pvc := range all[*corev1.PersistentVolumeClaim](objs) {
		ds := pvc.Spec.DataSource
		if ds == nil {
			continue
		}
		switch ds.Kind {
		case "VolumeSnapshot":
			require.Equal(t, "snapshot.storage.k8s.io", *ds.APIGroup, pvc.Name)
			require.True(t, snaps[pvc.Namespace+"/"+ds.Name], "PVC %s: no VolumeSnapshot %s", pvc.Name, ds.Name)
		case "PersistentVolumeClaim":
			require.True(t, claims[pvc.Namespace+"/"+ds.Name], "PVC %s: no PVC %s", pvc.Name, ds.Name)
		default:
			t.Fatalf("PVC %s: data source kind %s", pvc.Name, ds.Kind)
		}
		sources[ds.Kind] = true
	}
	require.Equal(t, map[string]bool{"VolumeSnapshot": true, "PersistentVolumeClaim": true}, sources,
		"examples restore a snapshot and clone a claim")
	pods := all[*corev1.Pod](objs)
	require.NotEmpty(t, pods)
	for _, p := range pods {
		for _, v := range p.Spec.Volumes {
			if c := v.PersistentVolumeClaim; c != nil {
				require.True(t, claims[p.Namespace+"/"+c.ClaimName], "pod %s: no PVC %s", p.Name, c.ClaimName)
			}
		}
	}
}

func kubectl(t *testing.T) string {
	t.Helper()
	k, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: install it to check the manifests with kubectl")
	}
	return k
}

func runKubectl(t *testing.T, k string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, k, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// kubectl kustomize builds the base offline: its resources exist and parse.
func TestKubectlKustomize(t *testing.T) {
	k := kubectl(t)
	out, err := runKubectl(t, k, "kustomize", manifestDir)
	require.NoError(t, err, out)
	for _, kind := range []string{"CSIDriver", "Deployment", "DaemonSet", "ClusterRole", "ConfigMap"} {
		require.Contains(t, out, "kind: "+kind)
	}
	require.Contains(t, out, "image: vda-csi:0.1.0")
}

// kubectl apply --dry-run=client needs an API server for discovery and
// schema validation (KUBECONFIG or ~/.kube/config); it skips without one.
func TestKubectlDryRun(t *testing.T) {
	k := kubectl(t)
	if out, err := runKubectl(t, k, "version", "--request-timeout=10s"); err != nil {
		t.Skipf("no reachable Kubernetes API server for kubectl apply --dry-run=client (set KUBECONFIG): %s", strings.TrimSpace(out))
	}
	for _, f := range manifestFiles(t) {
		out, err := runKubectl(t, k, "apply", "--dry-run=client", "--validate=strict", "-f", f)
		require.NoError(t, err, "%s: %s", f, out)
	}
}

// The image builds vda-csi and carries the tools the node plugin runs
// (csi/ execs nvme, mkfs.ext4/xfs, resize2fs, xfs_growfs, blkid).
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	var froms []string
	var installs string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if f, ok := strings.CutPrefix(l, "FROM "); ok {
			froms = append(froms, f)
		}
		if strings.Contains(l, "apt-get install") {
			installs = l
		}
	}
	require.Len(t, froms, 2, "multi-stage: build, then run")
	require.Regexp(t, `^golang:1\.26\.\d+-\S+ AS build$`, froms[0])
	require.Contains(t, froms[1], "-slim")
	require.Contains(t, string(b), "./cmd/vda-csi")
	require.Contains(t, string(b), "COPY --from=build /out/vda-csi ")
	require.Contains(t, string(b), `ENTRYPOINT ["/usr/local/bin/vda-csi"]`)
	for _, pkg := range []string{"nvme-cli", "e2fsprogs", "xfsprogs", "util-linux", "mount"} {
		require.Regexp(t, `\s`+regexp.QuoteMeta(pkg)+`\s`, installs, "package %s", pkg)
	}
}
