"""The VDA Cinder volume driver: Cinder volumes as VDA disk arrays.

The mapping (README, "OpenStack (Cinder driver)"):

- A volume is a DA named ``cinder-<volume id>`` (provider_location
  ``vda:da:<da>``), its controllers, stripes and QoS from the volume type.
- A snapshot is a VDA snapshot ``cinder-snap-<snapshot id>`` in the DA of
  its volume (``vda:snap:<da>/<snap>``).
- A volume made from a snapshot, or cloned from a volume, is a VDA clone
  ``cinder-<volume id>`` in the source volume's DA (``vda:clone:<da>/<clone>``):
  it shares the DA's controllers, physical space and failover, and the
  source volume cannot be deleted while it exists. A clone of a volume is
  made from a transient snapshot ``cinder-tmp-<volume id>``.
- Attaching a volume admits the connector's host NQN to the volume's one
  exporter (``cinder-<volume id>``, created on the first attach, deleted
  with its last host); the connection info is os-brick's NVMe-oF format
  with every controller's listener as a portal (native multipath).
"""

import functools
import json
import threading
import time
import uuid

import grpc
from oslo_config import cfg
from oslo_log import log as logging

from cinder.common import constants
from cinder import exception
from cinder import interface
from cinder.objects import fields
from cinder.volume import configuration
from cinder.volume import driver

from vda_cinder import portal as vda_portal
from vda_cinder import portal_pb2 as pb

LOG = logging.getLogger(__name__)

GiB = 1 << 30

vda_opts = [
    cfg.StrOpt('vda_portal_address', help='The VDA portal gRPC address, host:port.'),
    cfg.StrOpt('vda_tls_cert', help='The driver\'s client certificate (an admin certificate of the VDA CA, '
                                    '"vda certs issue --role admin"); unset: no TLS.'),
    cfg.StrOpt('vda_tls_key', help='The key of vda_tls_cert.'),
    cfg.StrOpt('vda_tls_ca', help='The VDA CA certificate the portal\'s certificate is checked against.'),
    cfg.StrOpt('vda_tls_server_name', help='The name to check in the portal\'s certificate when it is not the '
                                           'host of vda_portal_address.'),
    cfg.FloatOpt('vda_rpc_timeout', default=30.0, min=1, help='Seconds each portal call may take.'),
    cfg.FloatOpt('vda_wait_timeout', default=300.0, min=1,
                 help='Seconds to wait for the cluster to carry out a change (a DA initialized, a snapshot taken, '
                      'a clone made or inflated).'),
    cfg.FloatOpt('vda_poll_interval', default=1.0, min=0.01, help='Seconds between polls while waiting.'),
]

configuration.CONF.register_opts(vda_opts, group=configuration.SHARED_CONF_GROUP)

# The namespace of VDA's name-based namespace UUIDs (nvmeof.NamespaceUUID):
# every controller gives an exporter's namespace uuid5(this, exporter NQN).
NS_UUID_NAMESPACE = uuid.UUID('5c1a8e43-072d-4b6e-9f31-d42a6b80c517')

PREFIX = 'cinder-'
SNAP_PREFIX = 'cinder-snap-'
TMP_SNAP_PREFIX = 'cinder-tmp-'

# Volume type extra specs: key -> (parser, default).
SPEC_CNTLR_CNT = 'vda:cntlr_cnt'
SPEC_STRIPE_COUNT = 'vda:stripe_count'
SPEC_STRIPE_SIZE_KB = 'vda:stripe_size_kb'
SPEC_PHYSICAL_FACTOR = 'vda:physical_size_factor'
SPEC_CLONE_INFLATE = 'vda:clone_inflate'

# Back-end QoS spec keys (Cinder's standard names) -> QosMsg field, divisor.
QOS_KEYS = {
    'total_iops_sec': ('rw_ios_per_sec', 1),
    'total_bytes_sec': ('rw_mbytes_per_sec', 1 << 20),
    'read_bytes_sec': ('r_mbytes_per_sec', 1 << 20),
    'write_bytes_sec': ('w_mbytes_per_sec', 1 << 20),
}


def _int_spec(key, lo, hi):
    def parse(v):
        try:
            n = int(v)
        except (TypeError, ValueError):
            n = None
        if n is None or not lo <= n <= hi:
            raise exception.InvalidInput(reason='volume type extra spec %s=%r: want an integer in %d..%d'
                                         % (key, v, lo, hi))
        return n
    return parse


def _factor_spec(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        f = None
    if f is None or not 1 <= f <= 16:
        raise exception.InvalidInput(reason='volume type extra spec %s=%r: want a number in 1..16'
                                     % (SPEC_PHYSICAL_FACTOR, v))
    return f


def _bool_spec(v):
    s = str(v).strip().lower()
    if s.startswith('<is> '):
        s = s[5:].strip()
    if s in ('true', '1', 'yes', 'on'):
        return True
    if s in ('false', '0', 'no', 'off'):
        return False
    raise exception.InvalidInput(reason='volume type extra spec %s=%r: want true or false' % (SPEC_CLONE_INFLATE, v))


def _stripe_size(v):
    n = _int_spec(SPEC_STRIPE_SIZE_KB, 4, 1024)(v)
    if n & (n - 1):
        raise exception.InvalidInput(reason='volume type extra spec %s=%r: want a power of two'
                                     % (SPEC_STRIPE_SIZE_KB, v))
    return n


SPECS = {
    SPEC_CNTLR_CNT: (_int_spec(SPEC_CNTLR_CNT, 1, 8), 1),
    SPEC_STRIPE_COUNT: (_int_spec(SPEC_STRIPE_COUNT, 1, 32), 1),
    SPEC_STRIPE_SIZE_KB: (_stripe_size, 64),
    SPEC_PHYSICAL_FACTOR: (_factor_spec, 1.0),
    SPEC_CLONE_INFLATE: (_bool_spec, False),
}


def parse_extra_specs(extra_specs):
    """The vda: extra specs of a volume type, checked, with defaults.

    Keys of other scopes (capabilities:, the scheduler's) are not ours; an
    unknown vda: key is refused, since a typo should fail, not be ignored.
    """
    out = {k: d for k, (_, d) in SPECS.items()}
    for key, val in (extra_specs or {}).items():
        if not key.startswith('vda:'):
            continue
        if key not in SPECS:
            raise exception.InvalidInput(reason='unknown volume type extra spec %s (known: %s)'
                                         % (key, ', '.join(sorted(SPECS))))
        out[key] = SPECS[key][0](val)
    return out


def parse_qos(qos_specs):
    """The QosMsg of a volume type's QoS specs, or None for no limit.

    Front-end specs are the hypervisor's (Nova applies them); back-end and
    both are VDA's, in Cinder's standard keys. IOPS must be a multiple of
    1000 and byte rates whole MiB/s, as VDA enforces them (SPDK's QoS
    granularity): a value VDA would round is refused instead.
    """
    if not qos_specs:
        return None
    consumer = qos_specs.get('consumer', 'back-end')
    if consumer not in ('back-end', 'both'):
        return None
    fields = {}
    for key, val in (qos_specs.get('specs') or {}).items():
        if key not in QOS_KEYS:
            raise exception.InvalidInput(reason='QoS spec %s is not supported by VDA (supported: %s)'
                                         % (key, ', '.join(sorted(QOS_KEYS))))
        field, div = QOS_KEYS[key]
        try:
            n = int(val)
        except (TypeError, ValueError):
            n = -1
        if n < 0 or n % (1000 if div == 1 else div) or n // div >= 1 << 32:
            want = 'a multiple of 1000' if div == 1 else 'a multiple of 1048576 (whole MiB/s)'
            raise exception.InvalidInput(reason='QoS spec %s=%r: want %s' % (key, val, want))
        fields[field] = n // div
    if not any(fields.values()):
        return None
    return pb.QosMsg(**fields)


def namespace_uuid(exp_nqn):
    """The UUID of the namespace every controller of exporter NQN exp_nqn shows."""
    return str(uuid.uuid5(NS_UUID_NAMESPACE, exp_nqn))


def _error(e):
    """The Cinder exception of a portal error nobody handled."""
    msg = '%s (portal %s)' % (e.message, e.method)
    c = e.code
    if c in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return exception.InvalidInput(reason=msg)
    if c == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return exception.VolumeBackendAPIException(data='VDA has no room or nodes for it: ' + msg)
    if c in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return exception.VolumeBackendAPIException(
            data='the portal refused the driver\'s identity (vda_tls_cert must be an admin certificate of the '
                 'cluster\'s CA): ' + msg)
    if c in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return exception.VolumeBackendAPIException(data='the VDA portal is unreachable: ' + msg)
    return exception.VolumeBackendAPIException(data='%s: %s' % (c.name, msg))


def _translated(fn):
    """Raise the Cinder exception of a PortalError fn let through."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except vda_portal.PortalError as e:
            raise _error(e) from e
    return wrapper


def _is(e, code):
    return isinstance(e, vda_portal.PortalError) and e.code == code


NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS


class Location(object):
    """Where a Cinder volume or snapshot lives in VDA (its provider_location)."""

    def __init__(self, kind, da, name=None):
        self.kind, self.da, self.name = kind, da, name or da

    def __str__(self):
        if self.kind == 'da':
            return 'vda:da:%s' % self.da
        return 'vda:%s:%s/%s' % (self.kind, self.da, self.name)

    @classmethod
    def parse(cls, s):
        parts = (s or '').split(':', 2)
        if len(parts) == 3 and parts[0] == 'vda':
            if parts[1] == 'da' and parts[2]:
                return cls('da', parts[2])
            if parts[1] in ('clone', 'snap') and '/' in parts[2]:
                da, name = parts[2].split('/', 1)
                return cls(parts[1], da, name)
        return None


@interface.volumedriver
class VDADriver(driver.VolumeDriver):
    """Cinder volumes on a VDA cluster, attached over NVMe/TCP.

    Version history:
        1.0.0 - DAs, exporters, snapshots and clones (issue 21).
    """

    VERSION = '1.0.0'
    CI_WIKI_NAME = 'VDA_CI'

    def __init__(self, *args, **kwargs):
        super(VDADriver, self).__init__(*args, **kwargs)
        if self.configuration:
            self.configuration.append_config_values(vda_opts)
        self.portal = None
        self._locks = {}
        self._locks_mu = threading.Lock()

    @classmethod
    def get_driver_options(cls):
        return vda_opts + cls._get_oslo_driver_opts('volume_backend_name', 'reserved_percentage')

    # ---- setup

    def do_setup(self, context):
        c = self.configuration
        if not c.vda_portal_address:
            raise exception.InvalidConfigurationValue(option='vda_portal_address', value=None)
        try:
            self.portal = vda_portal.Portal(c.vda_portal_address, cert=c.vda_tls_cert, key=c.vda_tls_key,
                                            ca=c.vda_tls_ca, server_name=c.vda_tls_server_name,
                                            timeout=c.vda_rpc_timeout)
        except (ValueError, OSError) as e:
            raise exception.VolumeDriverException(message='VDA portal TLS configuration: %s' % e)

    @_translated
    def check_for_setup_error(self):
        # One call proves the address, the TLS identity and its role.
        self.portal.GetClusterSummary()

    # ---- helpers

    def _lock(self, name):
        with self._locks_mu:
            return self._locks.setdefault(name, threading.Lock())

    def _wait(self, what, get, done):
        """Poll get() until done(reply) or vda_wait_timeout."""
        deadline = time.monotonic() + self.configuration.vda_wait_timeout
        while True:
            rep = get()
            if done(rep):
                return rep
            if time.monotonic() > deadline:
                raise exception.VolumeBackendAPIException(
                    data='%s: not done after %.0f s: %s' % (what, self.configuration.vda_wait_timeout, rep))
            time.sleep(self.configuration.vda_poll_interval)

    @staticmethod
    def _volume_type(volume):
        """(extra specs, back-end QoS) of volume's type."""
        if not volume.volume_type_id:
            return parse_extra_specs({}), None
        vt = volume.volume_type
        qos = None
        if vt.qos_specs_id:
            q = vt.qos_specs
            if q:
                qos = parse_qos({'consumer': q.consumer, 'specs': q.specs})
        return parse_extra_specs(vt.extra_specs), qos

    @staticmethod
    def _name(volume):
        return PREFIX + volume.name_id

    def _location(self, volume):
        loc = Location.parse(volume.provider_location)
        return loc or Location('da', self._name(volume))

    @staticmethod
    def _snap_location(snapshot):
        loc = Location.parse(snapshot.provider_location)
        if loc is None or loc.kind != 'snap':
            src = Location.parse(snapshot.volume.provider_location) if snapshot.volume else None
            da = src.da if src and src.kind == 'da' else PREFIX + snapshot.volume.name_id
            loc = Location('snap', da, SNAP_PREFIX + snapshot.id)
        return loc

    # ---- volumes

    @_translated
    def create_volume(self, volume):
        specs, qos = self._volume_type(volume)
        name = self._name(volume)
        desc = 'cinder volume %s' % volume.id
        size = volume.size * GiB
        physical = -(-int(size * specs[SPEC_PHYSICAL_FACTOR]) // 8192) * 8192
        conf = json.dumps({'stripe_count': specs[SPEC_STRIPE_COUNT], 'stripe_size_kb': specs[SPEC_STRIPE_SIZE_KB]})
        try:
            da = self.portal.CreateDa(da_name=name, cntlr_cnt=specs[SPEC_CNTLR_CNT], da_size=size,
                                      physical_size=physical, da_conf=conf, description=desc).da_msg
        except vda_portal.PortalError as e:
            if not _is(e, ALREADY_EXISTS):
                raise
            da = self.portal.GetDa(da_name=name).da_msg  # a retried create
            if da.description != desc or da.da_size != size:
                raise exception.VolumeBackendAPIException(
                    data='DA %s exists and is not volume %s of %d GiB (%r, %d bytes)'
                         % (name, volume.id, volume.size, da.description, da.da_size))
        if qos is not None:
            try:
                self.portal.ModifyDa(da_name=name, qos=qos)
            except vda_portal.PortalError:
                # A volume without the limits asked is not what was asked.
                self._delete_da(name)
                raise
        self._wait('DA %s' % name, lambda: self.portal.GetDa(da_name=name).da_msg, lambda d: d.initialized)
        LOG.info('created DA %s for volume %s (%d controllers)', name, volume.id, da.cntlr_cnt)
        return {'provider_location': str(Location('da', name))}

    def _delete_da(self, name):
        try:
            self.portal.DeleteDa(da_name=name)
        except vda_portal.PortalError as e:
            if not _is(e, NOT_FOUND):
                raise

    def _delete_exporter(self, da, exp):
        try:
            self.portal.DeleteExp(da_name=da, exp_name=exp)
        except vda_portal.PortalError as e:
            if not _is(e, NOT_FOUND):
                raise

    @_translated
    def delete_volume(self, volume):
        loc = self._location(volume)
        with self._lock(loc.name):
            # An exporter left by a failed detach would block the delete.
            self._delete_exporter(loc.da, loc.name)
            try:
                if loc.kind == 'clone':
                    self.portal.DeleteClone(da_name=loc.da, clone_name=loc.name)
                else:
                    self.portal.DeleteDa(da_name=loc.da)
            except vda_portal.PortalError as e:
                if _is(e, NOT_FOUND):
                    pass
                elif _is(e, FAILED_PRECONDITION):
                    # Clones made from the volume live in its DA.
                    raise exception.VolumeIsBusy(volume_name='%s (%s)' % (volume.id, e.message))
                else:
                    raise
            if loc.kind == 'clone':
                self._delete_tmp_snap(loc.da, volume)

    def _delete_tmp_snap(self, da, volume):
        try:
            self.portal.DeleteSnap(da_name=da, snap_name=TMP_SNAP_PREFIX + volume.name_id)
        except vda_portal.PortalError as e:
            if not _is(e, NOT_FOUND):
                raise

    @_translated
    def extend_volume(self, volume, new_size):
        loc = self._location(volume)
        if loc.kind == 'clone':
            self.portal.ModifyClone(da_name=loc.da, clone_name=loc.name, size=new_size * GiB)
            self._wait('clone %s' % loc.name, lambda: self.portal.GetClone(da_name=loc.da, clone_name=loc.name).clone_msg,
                       lambda c: c.ready and c.size == new_size * GiB)
        else:
            self.portal.ModifyDa(da_name=loc.da, da_size=new_size * GiB)

    def create_export(self, context, volume, connector):
        # The exporter is made for a host in initialize_connection.
        return None

    def ensure_export(self, context, volume):
        return None

    def remove_export(self, context, volume):
        return None

    def create_export_snapshot(self, context, snapshot, connector):
        return None

    def remove_export_snapshot(self, context, snapshot):
        return None

    # ---- connections

    def validate_connector(self, connector):
        if not connector or not connector.get('nqn'):
            raise exception.InvalidConnectorException(missing='nqn (the host NQN: nvme-cli and /etc/nvme/hostnqn)')

    def _attach(self, loc, exp_name, kwargs, host_nqn, what):
        """Admit host_nqn to exporter exp_name of loc.da, made with kwargs
        if missing; returns the exporter."""
        with self._lock(exp_name):
            try:
                exp = self.portal.GetExp(da_name=loc.da, exp_name=exp_name).exp_msg
            except vda_portal.PortalError as e:
                if not _is(e, NOT_FOUND):
                    raise
                try:
                    return self.portal.CreateExp(da_name=loc.da, exp_name=exp_name, host_nqns=[host_nqn],
                                                 description='cinder ' + what, **kwargs).exp_msg
                except vda_portal.PortalError as e:
                    if not _is(e, ALREADY_EXISTS):  # made by another cinder-volume meanwhile
                        raise
                    exp = self.portal.GetExp(da_name=loc.da, exp_name=exp_name).exp_msg
            if host_nqn in exp.host_nqns:
                return exp
            return self.portal.ModifyExp(da_name=loc.da, exp_name=exp_name, add_host_nqns=[host_nqn]).exp_msg

    def _detach(self, loc, exp_name, connector):
        with self._lock(exp_name):
            try:
                exp = self.portal.GetExp(da_name=loc.da, exp_name=exp_name).exp_msg
            except vda_portal.PortalError as e:
                if _is(e, NOT_FOUND):
                    return
                raise
            nqn = (connector or {}).get('nqn')
            if nqn and nqn not in exp.host_nqns:
                return
            if not nqn or list(exp.host_nqns) == [nqn]:
                # Every host (a forced detach), or the last one.
                self._delete_exporter(loc.da, exp_name)
            else:
                self.portal.ModifyExp(da_name=loc.da, exp_name=exp_name, remove_host_nqns=[nqn])

    @staticmethod
    def _connection_info(exp, host_nqn, read_only=False):
        portals = []
        for es in exp.es_msg_list:
            try:
                ln = json.loads(es.cn_listener_conf)
                addr, port = ln['traddr'], str(ln['trsvcid'])
            except (ValueError, KeyError, TypeError) as e:
                raise exception.VolumeBackendAPIException(
                    data='exporter %s: controller %d listener %r: %s' % (exp.exp_name, es.cntlr_idx,
                                                                         es.cn_listener_conf, e))
            trtype = 'RoCEv2' if str(ln.get('trtype', 'tcp')).lower() == 'rdma' else 'tcp'
            portals.append((addr, port, trtype))
        if not portals:
            raise exception.VolumeBackendAPIException(data='exporter %s has no controllers' % exp.exp_name)
        data = {
            'target_nqn': exp.exp_nqn,
            'vol_uuid': namespace_uuid(exp.exp_nqn),
            'portals': portals,
            'host_nqn': host_nqn,
            'access_mode': 'ro' if read_only else 'rw',
        }
        return {'driver_volume_type': 'nvmeof', 'data': data}

    @_translated
    def initialize_connection(self, volume, connector, **kwargs):
        self.validate_connector(connector)
        loc = self._location(volume)
        kw = {'clone_name': loc.name} if loc.kind == 'clone' else {}
        exp = self._attach(loc, loc.name, kw, connector['nqn'], 'volume %s' % volume.id)
        return self._connection_info(exp, connector['nqn'])

    @staticmethod
    def _attached_elsewhere_on_host(volume, connector):
        """Whether another attachment of volume (multiattach: two
        instances on one compute host) still uses connector's host NQN.
        Cinder detaches each attachment; the host leaves with the last."""
        host = (connector or {}).get('host')
        if not host or not volume.obj_attr_is_set('volume_attachment'):
            return False
        same = [a for a in volume.volume_attachment or []
                if a.attach_status == fields.VolumeAttachStatus.ATTACHED and a.attached_host == host]
        return len(same) > 1

    @_translated
    def terminate_connection(self, volume, connector, **kwargs):
        if self._attached_elsewhere_on_host(volume, connector):
            LOG.info('volume %s stays exported to %s: another attachment on host %s uses it',
                     volume.id, connector.get('nqn'), connector.get('host'))
            return
        loc = self._location(volume)
        self._detach(loc, loc.name, connector)

    @_translated
    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        self.validate_connector(connector)
        loc = self._snap_location(snapshot)
        exp = self._attach(loc, loc.name, {'snap_name': loc.name}, connector['nqn'], 'snapshot %s' % snapshot.id)
        return self._connection_info(exp, connector['nqn'], read_only=True)

    @_translated
    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        self._detach(self._snap_location(snapshot), self._snap_location(snapshot).name, connector)

    # ---- snapshots and clones

    def _snapshot(self, da, snap, desc):
        try:
            self.portal.CreateSnap(da_name=da, snap_name=snap, description=desc)
        except vda_portal.PortalError as e:
            if not _is(e, NOT_FOUND):
                raise
            raise exception.VolumeBackendAPIException(data='DA %s of the volume is gone: %s' % (da, e.message))
        self._wait('snapshot %s of DA %s' % (snap, da), lambda: self.portal.GetSnap(da_name=da, snap_name=snap).snap_msg,
                   lambda s: s.ready)

    @_translated
    def create_snapshot(self, snapshot):
        src = self._location(snapshot.volume)
        if src.kind != 'da':
            raise exception.VolumeDriverException(
                message='volume %s is a VDA clone in DA %s: VDA snapshots a DA\'s volume, not its clones'
                        % (snapshot.volume_id, src.da))
        loc = Location('snap', src.da, SNAP_PREFIX + snapshot.id)
        self._snapshot(loc.da, loc.name, 'cinder snapshot %s' % snapshot.id)
        return {'provider_location': str(loc)}

    @_translated
    def delete_snapshot(self, snapshot):
        loc = self._snap_location(snapshot)
        self._delete_exporter(loc.da, loc.name)
        try:
            self.portal.DeleteSnap(da_name=loc.da, snap_name=loc.name)
        except vda_portal.PortalError as e:
            if _is(e, NOT_FOUND):
                return
            if _is(e, FAILED_PRECONDITION):
                # Volumes made from it depend on it (not inflated).
                raise exception.SnapshotIsBusy(snapshot_name='%s (%s)' % (snapshot.id, e.message))
            raise

    def _clone(self, volume, da, snap, inflate):
        """Make volume a clone of snapshot snap of DA da; returns its model update."""
        name = self._name(volume)
        desc = 'cinder volume %s' % volume.id
        try:
            cl = self.portal.CreateClone(da_name=da, clone_name=name, snap_name=snap, description=desc).clone_msg
        except vda_portal.PortalError as e:
            if not _is(e, ALREADY_EXISTS):
                raise
            cl = self.portal.GetClone(da_name=da, clone_name=name).clone_msg
        size = volume.size * GiB
        if size < cl.size:
            self._delete_clone(da, name)
            raise exception.InvalidInput(reason='volume %s of %d GiB is smaller than the snapshot (%d bytes)'
                                         % (volume.id, volume.size, cl.size))
        try:
            mod = {}
            if size > cl.size:
                mod['size'] = size
            if inflate:
                mod['inflate'] = True
            if mod:
                self.portal.ModifyClone(da_name=da, clone_name=name, **mod)
            self._wait('clone %s of DA %s' % (name, da),
                       lambda: self.portal.GetClone(da_name=da, clone_name=name).clone_msg,
                       lambda c: c.ready and (c.inflated or not inflate) and c.size == size)
        except Exception:
            self._delete_clone(da, name)
            raise
        return {'provider_location': str(Location('clone', da, name))}

    def _delete_clone(self, da, name):
        try:
            self.portal.DeleteClone(da_name=da, clone_name=name)
        except vda_portal.PortalError as e:
            LOG.warning('could not delete clone %s of DA %s: %s', name, da, e)

    def _clone_specs(self, volume, da):
        """The extra specs of a volume that will be a clone in DA da."""
        specs, qos = self._volume_type(volume)
        if qos is not None:
            LOG.warning('volume %s is a clone in DA %s: it shares the DA\'s QoS; its type\'s QoS is not applied',
                        volume.id, da)
        return specs

    @_translated
    def create_volume_from_snapshot(self, volume, snapshot):
        loc = self._snap_location(snapshot)
        specs = self._clone_specs(volume, loc.da)
        return self._clone(volume, loc.da, loc.name, specs[SPEC_CLONE_INFLATE])

    @_translated
    def create_cloned_volume(self, volume, src_vref):
        src = self._location(src_vref)
        if src.kind != 'da':
            raise exception.VolumeDriverException(
                message='volume %s is a VDA clone in DA %s: VDA clones a DA\'s snapshots, and a clone has none'
                        % (src_vref.id, src.da))
        specs = self._clone_specs(volume, src.da)
        tmp = TMP_SNAP_PREFIX + volume.name_id
        self._snapshot(src.da, tmp, 'cinder clone source of volume %s' % volume.id)
        try:
            update = self._clone(volume, src.da, tmp, specs[SPEC_CLONE_INFLATE])
        except Exception:
            self._delete_tmp_snap(src.da, volume)
            raise
        if specs[SPEC_CLONE_INFLATE]:
            # Inflated: the clone no longer needs it. Otherwise it goes
            # with the clone (delete_volume).
            self._delete_tmp_snap(src.da, volume)
        return update

    # ---- stats

    @_translated
    def _update_volume_stats(self):
        s = self.portal.GetClusterSummary()
        c = self.configuration
        self._stats = {
            'volume_backend_name': c.safe_get('volume_backend_name') or 'VDA',
            'vendor_name': 'VDA',
            'driver_version': self.VERSION,
            'storage_protocol': constants.NVMEOF_TCP,
            'total_capacity_gb': round(s.total_bytes / GiB, 2),
            'free_capacity_gb': round(s.free_bytes / GiB, 2),
            'reserved_percentage': c.safe_get('reserved_percentage') or 0,
            'thin_provisioning_support': False,
            'thick_provisioning_support': True,
            'QoS_support': True,
            'multiattach': True,
            'online_extend_support': True,
            'sparse_copy_volume': False,
            'location_info': 'vda:%s' % c.vda_portal_address,
            'vda_cn_count': s.cn_cnt,
            'vda_dn_count': s.dn_cnt,
            'vda_pd_count': s.pd_cnt,
            'vda_da_count': s.da_cnt,
        }

    def get_volume_stats(self, refresh=False):
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats
