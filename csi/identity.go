package csi

import (
	"context"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/vda-io/vda/api/portalpb"
)

// GetPluginInfo returns the driver's name and version.
func (d *Driver) GetPluginInfo(context.Context, *csipb.GetPluginInfoRequest) (*csipb.GetPluginInfoResponse, error) {
	return &csipb.GetPluginInfoResponse{Name: DriverName, VendorVersion: Version}, nil
}

// GetPluginCapabilities advertises the controller service (in node mode
// too: the driver as a whole has one) and online volume expansion.
func (d *Driver) GetPluginCapabilities(context.Context, *csipb.GetPluginCapabilitiesRequest) (*csipb.GetPluginCapabilitiesResponse, error) {
	caps := []*csipb.PluginCapability{{Type: &csipb.PluginCapability_VolumeExpansion_{
		VolumeExpansion: &csipb.PluginCapability_VolumeExpansion{Type: csipb.PluginCapability_VolumeExpansion_ONLINE}}}}
	caps = append(caps, &csipb.PluginCapability{Type: &csipb.PluginCapability_Service_{
		Service: &csipb.PluginCapability_Service{Type: csipb.PluginCapability_Service_CONTROLLER_SERVICE}}})
	caps = append(caps, &csipb.PluginCapability{Type: &csipb.PluginCapability_Service_{
		Service: &csipb.PluginCapability_Service{Type: csipb.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS}}})
	return &csipb.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe reports ready; in controller mode only once the portal answers.
func (d *Driver) Probe(ctx context.Context, _ *csipb.ProbeRequest) (*csipb.ProbeResponse, error) {
	if d.cfg.Portal != nil {
		if _, err := d.cfg.Portal.GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{}); err != nil {
			return &csipb.ProbeResponse{Ready: wrapperspb.Bool(false)}, nil
		}
	}
	return &csipb.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}
