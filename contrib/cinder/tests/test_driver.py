"""The VDA Cinder driver against a real portal.

Run by contrib/cinder/cinder_test.go (go test ./contrib/cinder), which
starts a dev cluster and sets VDA_PORTAL_ADDR and VDA_TLS_{CERT,KEY,CA}.
Volumes, snapshots and connectors are Cinder's own objects (cinder.objects,
cinder.tests.unit.fake_*); every change is checked through the portal, and
connection info is parsed by os-brick's NVMe-oF connector.
"""

import json
import os
import subprocess
import sys
import textwrap
import unittest
import uuid

import grpc
from os_brick.initiator.connectors import nvmeof as brick_nvmeof
from oslo_config import cfg

from cinder import context
from cinder import exception
from cinder import interface as cinder_interface
from cinder.interface import volume_driver as volume_driver_if
from cinder import objects
from cinder.tests.unit import fake_snapshot
from cinder.tests.unit import fake_volume
from cinder.volume import configuration
from cinder.volume import driver as cinder_driver

from vda_cinder import driver as vda_driver
from vda_cinder import portal as vda_portal

GiB = 1 << 30
GROUP = 'vda_test'
ADDR = os.environ.get('VDA_PORTAL_ADDR')
HOST1 = 'nqn.2014-08.org.nvmexpress:uuid:11111111-2222-4333-8444-555555555555'
HOST2 = 'nqn.2014-08.org.nvmexpress:uuid:66666666-7777-4888-9999-aaaaaaaaaaaa'


def setUpModule():
    if not ADDR:
        raise unittest.SkipTest('run by go test ./contrib/cinder, which starts a portal (VDA_PORTAL_ADDR unset)')
    objects.register_all()
    cfg.CONF([], project='cinder', default_config_files=[])


def make_driver(tls=True, group=GROUP, **overrides):
    conf = configuration.Configuration(cinder_driver.volume_opts, config_group=group)
    conf.append_config_values(vda_driver.vda_opts)
    values = {'vda_portal_address': ADDR, 'vda_poll_interval': 0.1, 'vda_wait_timeout': 120,
              'volume_backend_name': 'vda-test'}
    if tls:
        values.update(vda_tls_cert=os.environ['VDA_TLS_CERT'], vda_tls_key=os.environ['VDA_TLS_KEY'],
                      vda_tls_ca=os.environ['VDA_TLS_CA'])
    values.update(overrides)
    for k, v in values.items():
        cfg.CONF.set_override(k, v, group=group)
    d = vda_driver.VDADriver(configuration=conf, host='test-host@vda')
    d.do_setup(context.get_admin_context())
    return d


class DriverTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ctx = context.get_admin_context()
        cls.driver = make_driver()
        cls.driver.check_for_setup_error()
        cls.portal = vda_portal.Portal(ADDR, cert=os.environ['VDA_TLS_CERT'], key=os.environ['VDA_TLS_KEY'],
                                       ca=os.environ['VDA_TLS_CA'])

    @classmethod
    def tearDownClass(cls):
        # Every test deletes what it made: no DA of ours is left.
        left = [d.da_name for d in cls.portal.list_all('ListDa', 'da_msg_list')
                if d.da_name.startswith(vda_driver.PREFIX)]
        cls.portal.close()
        cls.driver.portal.close()
        if left:
            raise AssertionError('DAs left behind: %s' % left)

    # ---- helpers

    def volume_type(self, extra_specs=None, qos=None, consumer='back-end'):
        vt = fake_volume.fake_volume_type_obj(self.ctx, id=str(uuid.uuid4()), extra_specs=extra_specs or {})
        if qos is not None:
            q = objects.QualityOfServiceSpecs(self.ctx, id=str(uuid.uuid4()), name='q', consumer=consumer, specs=qos)
            vt.qos_specs_id = q.id
            vt.qos_specs = q
        return vt

    def volume(self, size=1, vt=None, create=True):
        vol = fake_volume.fake_volume_obj(self.ctx, id=str(uuid.uuid4()), size=size,
                                          volume_type_id=vt.id if vt else None)
        vol.volume_type = vt
        if create:
            update = self.driver.create_volume(vol)
            vol.update(update)
            self.addCleanup(self.driver.delete_volume, vol)
        return vol

    def snapshot(self, vol, create=True):
        snap = fake_snapshot.fake_snapshot_obj(self.ctx, id=str(uuid.uuid4()), volume_id=vol.id,
                                               volume_size=vol.size)
        snap.volume = vol
        if create:
            snap.update(self.driver.create_snapshot(snap))
            self.addCleanup(self.driver.delete_snapshot, snap)
        return snap

    def da(self, vol):
        return self.portal.GetDa(da_name=vda_driver.PREFIX + vol.id).da_msg

    def assertNotFound(self, fn, **kw):
        with self.assertRaises(vda_portal.PortalError) as cm:
            fn(**kw)
        self.assertEqual(cm.exception.code, grpc.StatusCode.NOT_FOUND, cm.exception)

    def exporters(self, da):
        return self.portal.list_all('ListExp', 'exp_msg_list', da_name=da)

    def check_connection(self, info, exp, host, read_only=False):
        """info is what os-brick needs to reach exporter exp from host."""
        self.assertEqual(info['driver_volume_type'], 'nvmeof')
        props = brick_nvmeof.NVMeOFConnProps(dict(info['data']))
        self.assertFalse(props.is_replicated)
        self.assertEqual(props.readonly, read_only)
        self.assertEqual(len(props.targets), 1)
        tgt = props.targets[0]
        self.assertEqual(tgt.nqn, exp.exp_nqn)
        self.assertEqual(tgt.host_nqn, host)
        self.assertEqual(tgt.uuid, vda_driver.namespace_uuid(exp.exp_nqn))
        want = set()
        for es in exp.es_msg_list:
            ln = json.loads(es.cn_listener_conf)
            want.add((ln['traddr'], str(ln['trsvcid']), 'tcp'))
        got = {(p.address, p.port, p.transport) for p in tgt.portals}
        self.assertEqual(got, want)
        return tgt

    # ---- tests

    def test_interface_compliance(self):
        # What Cinder's compliance test (cinder/tests/compliance) checks of
        # its in-tree drivers, plus the methods themselves: VolumeDriverCore
        # and the snapshot interface, each implemented (not just inherited
        # from the base's NotImplementedError).
        self.assertIn(vda_driver.VDADriver, cinder_interface._volume_register)
        self.assertTrue(issubclass(vda_driver.VDADriver, volume_driver_if.VolumeDriverCore))
        for name in ('do_setup', 'check_for_setup_error', 'get_volume_stats', 'create_volume', 'delete_volume',
                     'initialize_connection', 'terminate_connection', 'extend_volume', 'create_snapshot',
                     'delete_snapshot', 'create_volume_from_snapshot', 'create_cloned_volume', 'create_export',
                     'ensure_export', 'remove_export', 'initialize_connection_snapshot',
                     'terminate_connection_snapshot'):
            self.assertIn(name, vda_driver.VDADriver.__dict__, name)
        opts = {o.name for o in vda_driver.VDADriver.get_driver_options()}
        self.assertTrue({'vda_portal_address', 'vda_tls_cert', 'volume_backend_name'} <= opts, opts)

    def test_namespace_uuid_matches_go(self):
        nqn, want = os.environ['VDA_TEST_NS_UUID'].split()
        self.assertEqual(vda_driver.namespace_uuid(nqn), want)

    def test_stats(self):
        stats = self.driver.get_volume_stats(refresh=True)
        s = self.portal.GetClusterSummary()
        self.assertGreater(s.total_bytes, 0)
        self.assertEqual(stats['total_capacity_gb'], round(s.total_bytes / GiB, 2))
        self.assertLessEqual(stats['free_capacity_gb'], stats['total_capacity_gb'])
        self.assertEqual(stats['volume_backend_name'], 'vda-test')
        self.assertEqual(stats['storage_protocol'], 'NVMe-TCP')
        self.assertTrue(stats['QoS_support'])
        self.assertTrue(stats['multiattach'])
        self.assertEqual(stats['vda_cn_count'], int(os.environ.get('VDA_TEST_CNS', '2')))
        self.assertIs(self.driver.get_volume_stats(), stats)

    def test_create_extend_delete(self):
        vt = self.volume_type({'vda:cntlr_cnt': '2', 'vda:stripe_count': '2', 'vda:stripe_size_kb': '32',
                               'vda:physical_size_factor': '2', 'capabilities:foo': 'ignored'},
                              qos={'total_iops_sec': '2000', 'total_bytes_sec': str(100 << 20),
                                   'read_bytes_sec': str(50 << 20), 'write_bytes_sec': str(40 << 20)})
        vol = self.volume(size=1, vt=vt)
        name = vda_driver.PREFIX + vol.id
        self.assertEqual(vol.provider_location, 'vda:da:' + name)
        da = self.da(vol)
        self.assertTrue(da.initialized)
        self.assertEqual((da.cntlr_cnt, da.da_size, da.physical_size), (2, GiB, 2 * GiB))
        self.assertEqual((da.da_conf.stripe_count, da.da_conf.stripe_size_kb), (2, 32))
        self.assertEqual((da.qos.rw_ios_per_sec, da.qos.rw_mbytes_per_sec, da.qos.r_mbytes_per_sec,
                          da.qos.w_mbytes_per_sec), (2000, 100, 50, 40))
        self.assertIn(vol.id, da.description)
        # A retried create (cinder-volume restarted mid-way) finds it.
        self.assertEqual(self.driver.create_volume(vol)['provider_location'], vol.provider_location)

        self.driver.extend_volume(vol, 2)
        self.assertEqual(self.da(vol).da_size, 2 * GiB)
        # Beyond the physical size the DA's lvstore holds.
        with self.assertRaises(exception.CinderException) as cm:
            self.driver.extend_volume(vol, 3)
        self.assertIn('physical', str(cm.exception))
        self.assertEqual(self.da(vol).da_size, 2 * GiB)

        self.driver.delete_volume(vol)
        self.assertNotFound(self.portal.GetDa, da_name=name)
        self.driver.delete_volume(vol)  # gone already: deleted

    def test_defaults_and_front_end_qos(self):
        vol = self.volume(vt=self.volume_type(qos={'total_iops_sec': '1500'}, consumer='front-end'))
        da = self.da(vol)
        self.assertEqual((da.cntlr_cnt, da.da_size, da.physical_size), (1, GiB, GiB))
        self.assertEqual((da.da_conf.stripe_count, da.da_conf.stripe_size_kb), (1, 64))
        self.assertEqual(da.qos.rw_ios_per_sec, 0)  # Nova's to apply, not VDA's
        self.assertEqual(self.volume().provider_location[:7], 'vda:da:')  # no volume type at all

    def test_invalid_specs(self):
        for specs, qos in [({'vda:cntlr_cnt': '9'}, None), ({'vda:cntlr_cnt': 'two'}, None),
                           ({'vda:stripe_size_kb': '48'}, None), ({'vda:physical_size_factor': '0.5'}, None),
                           ({'vda:clone_inflate': 'maybe'}, None), ({'vda:stripes': '2'}, None),
                           ({}, {'total_iops_sec': '1500'}), ({}, {'total_bytes_sec': '1000'}),
                           ({}, {'read_iops_sec': '1000'})]:
            vol = self.volume(vt=self.volume_type(specs, qos=qos), create=False)
            with self.assertRaises(exception.InvalidInput, msg='%s %s' % (specs, qos)):
                self.driver.create_volume(vol)
            self.assertNotFound(self.portal.GetDa, da_name=vda_driver.PREFIX + vol.id)

    def test_no_room(self):
        vol = self.volume(size=1024, create=False)
        with self.assertRaises(exception.VolumeBackendAPIException) as cm:
            self.driver.create_volume(vol)
        self.assertIn('no room', str(cm.exception))
        self.assertNotFound(self.portal.GetDa, da_name=vda_driver.PREFIX + vol.id)

    def test_connections(self):
        vol = self.volume(vt=self.volume_type({'vda:cntlr_cnt': '2'}))
        name = vda_driver.PREFIX + vol.id
        with self.assertRaises(exception.InvalidConnectorException):
            self.driver.initialize_connection(vol, {'host': 'h', 'initiator': 'iqn.x'})
        self.assertEqual(self.exporters(name), [])

        info1 = self.driver.initialize_connection(vol, {'host': 'h1', 'nqn': HOST1})
        exp = self.portal.GetExp(da_name=name, exp_name=name).exp_msg
        self.assertEqual(list(exp.host_nqns), [HOST1])
        self.assertEqual(len(exp.es_msg_list), 2)  # every controller is a path
        self.check_connection(info1, exp, HOST1)
        # Attaching again (a retry) changes nothing.
        self.assertEqual(self.driver.initialize_connection(vol, {'nqn': HOST1}), info1)

        # Multiattach: the second host joins the volume's one exporter.
        info2 = self.driver.initialize_connection(vol, {'host': 'h2', 'nqn': HOST2})
        self.assertEqual([e.exp_name for e in self.exporters(name)], [name])
        exp = self.portal.GetExp(da_name=name, exp_name=name).exp_msg  # List leaves the listeners out
        self.assertEqual(list(exp.host_nqns), [HOST1, HOST2])
        self.check_connection(info2, exp, HOST2)
        self.check_connection(info1, exp, HOST1)

        self.driver.terminate_connection(vol, {'nqn': HOST1})
        self.assertEqual(list(self.portal.GetExp(da_name=name, exp_name=name).exp_msg.host_nqns), [HOST2])
        self.driver.terminate_connection(vol, {'nqn': HOST1})  # gone already
        self.driver.terminate_connection(vol, {'nqn': HOST2})  # the last host: the exporter goes
        self.assertEqual(self.exporters(name), [])
        self.driver.terminate_connection(vol, {'nqn': HOST2})

        # Two instances on one compute host: the host stays until the
        # last of their attachments is detached.
        self.driver.initialize_connection(vol, {'host': 'h1', 'nqn': HOST1})
        att = [objects.VolumeAttachment(self.ctx, id=str(uuid.uuid4()), volume_id=vol.id, attached_host='h1',
                                        attach_status='attached') for _ in range(2)]
        vol.volume_attachment = objects.VolumeAttachmentList(objects=att)
        self.driver.terminate_connection(vol, {'host': 'h1', 'nqn': HOST1})
        self.assertEqual(list(self.portal.GetExp(da_name=name, exp_name=name).exp_msg.host_nqns), [HOST1])
        vol.volume_attachment = objects.VolumeAttachmentList(objects=att[:1])
        self.driver.terminate_connection(vol, {'host': 'h1', 'nqn': HOST1})
        self.assertEqual(self.exporters(name), [])

        # A forced detach (no connector) drops every host.
        self.driver.initialize_connection(vol, {'nqn': HOST1})
        self.driver.initialize_connection(vol, {'nqn': HOST2})
        self.driver.terminate_connection(vol, None, force=True)
        self.assertEqual(self.exporters(name), [])

        # Deleting an attached volume drops its exporter first.
        self.driver.initialize_connection(vol, {'nqn': HOST1})
        self.driver.delete_volume(vol)
        self.assertNotFound(self.portal.GetDa, da_name=name)

    def test_export_hooks_are_noops(self):
        vol = self.volume()
        name = vda_driver.PREFIX + vol.id
        self.assertIsNone(self.driver.create_export(self.ctx, vol, {'nqn': HOST1}))
        self.assertIsNone(self.driver.ensure_export(self.ctx, vol))
        self.assertIsNone(self.driver.remove_export(self.ctx, vol))
        self.assertEqual(self.exporters(name), [])

    def test_snapshot_and_volume_from_it(self):
        src = self.volume(vt=self.volume_type({'vda:physical_size_factor': '3'}))
        da = vda_driver.PREFIX + src.id
        snap = self.snapshot(src)
        snap_name = vda_driver.SNAP_PREFIX + snap.id
        self.assertEqual(snap.provider_location, 'vda:snap:%s/%s' % (da, snap_name))
        s = self.portal.GetSnap(da_name=da, snap_name=snap_name).snap_msg
        self.assertTrue(s.ready)
        self.assertEqual(s.size, GiB)

        # A bigger volume from the snapshot: a clone in the source's DA.
        vol = self.volume(size=2, create=False)
        vol.update(self.driver.create_volume_from_snapshot(vol, snap))
        self.addCleanup(self.driver.delete_volume, vol)
        clone = vda_driver.PREFIX + vol.id
        self.assertEqual(vol.provider_location, 'vda:clone:%s/%s' % (da, clone))
        cl = self.portal.GetClone(da_name=da, clone_name=clone).clone_msg
        self.assertEqual((cl.snap_name, cl.size, cl.ready, cl.inflated), (snap_name, 2 * GiB, True, False))

        # Attached through an exporter of the clone.
        info = self.driver.initialize_connection(vol, {'nqn': HOST1})
        exp = self.portal.GetExp(da_name=da, exp_name=clone).exp_msg
        self.assertEqual(exp.clone_name, clone)
        self.check_connection(info, exp, HOST1)
        self.driver.terminate_connection(vol, {'nqn': HOST1})
        self.assertNotFound(self.portal.GetExp, da_name=da, exp_name=clone)

        # The clone grows within the DA's physical size.
        self.driver.extend_volume(vol, 3)
        self.assertEqual(self.portal.GetClone(da_name=da, clone_name=clone).clone_msg.size, 3 * GiB)

        # What VDA cannot do, refused the Cinder way.
        with self.assertRaises(exception.VolumeDriverException):
            self.snapshot(vol)
        with self.assertRaises(exception.VolumeDriverException):
            self.driver.create_cloned_volume(self.volume(create=False), vol)
        with self.assertRaises(exception.SnapshotIsBusy):
            self.driver.delete_snapshot(snap)  # the clone depends on it
        self.assertTrue(self.portal.GetSnap(da_name=da, snap_name=snap_name).snap_msg.ready)
        with self.assertRaises(exception.VolumeIsBusy):
            self.driver.delete_volume(src)  # its snapshot and clone live in it
        self.da(src)

        self.driver.delete_volume(vol)
        self.assertNotFound(self.portal.GetClone, da_name=da, clone_name=clone)
        self.driver.delete_snapshot(snap)
        self.assertNotFound(self.portal.GetSnap, da_name=da, snap_name=snap_name)
        self.driver.delete_snapshot(snap)  # gone already
        self.driver.delete_volume(src)
        self.assertNotFound(self.portal.GetDa, da_name=da)

    def test_volume_from_snapshot_too_small(self):
        src = self.volume(size=2, vt=self.volume_type({'vda:stripe_count': '2'}))
        snap = self.snapshot(src)
        vol = self.volume(size=1, create=False)
        with self.assertRaises(exception.InvalidInput):
            self.driver.create_volume_from_snapshot(vol, snap)
        self.assertNotFound(self.portal.GetClone, da_name=vda_driver.PREFIX + src.id,
                            clone_name=vda_driver.PREFIX + vol.id)

    def test_inflated_volume_from_snapshot(self):
        src = self.volume(vt=self.volume_type({'vda:physical_size_factor': '3'}))
        da = vda_driver.PREFIX + src.id
        snap = self.snapshot(src)
        vol = self.volume(create=False, vt=self.volume_type({'vda:clone_inflate': '<is> True'}))
        vol.update(self.driver.create_volume_from_snapshot(vol, snap))
        cl = self.portal.GetClone(da_name=da, clone_name=vda_driver.PREFIX + vol.id).clone_msg
        self.assertTrue(cl.inflated)
        # Independent of the snapshot, which can go first.
        self.driver.delete_snapshot(snap)
        self.assertNotFound(self.portal.GetSnap, da_name=da, snap_name=vda_driver.SNAP_PREFIX + snap.id)
        self.driver.delete_volume(vol)

    def test_cloned_volume(self):
        src = self.volume(vt=self.volume_type({'vda:physical_size_factor': '3'}))
        da = vda_driver.PREFIX + src.id
        for inflate in (False, True):
            vol = self.volume(create=False, vt=self.volume_type({'vda:clone_inflate': str(inflate)}))
            vol.update(self.driver.create_cloned_volume(vol, src))
            clone = vda_driver.PREFIX + vol.id
            tmp = vda_driver.TMP_SNAP_PREFIX + vol.id
            self.assertEqual(vol.provider_location, 'vda:clone:%s/%s' % (da, clone))
            cl = self.portal.GetClone(da_name=da, clone_name=clone).clone_msg
            self.assertEqual((cl.snap_name, cl.ready, cl.inflated), (tmp, True, inflate))
            if inflate:
                # Inflated, it needs no snapshot: the transient one is gone.
                self.assertNotFound(self.portal.GetSnap, da_name=da, snap_name=tmp)
            else:
                self.assertTrue(self.portal.GetSnap(da_name=da, snap_name=tmp).snap_msg.ready)
            self.driver.delete_volume(vol)
            self.assertNotFound(self.portal.GetClone, da_name=da, clone_name=clone)
            self.assertNotFound(self.portal.GetSnap, da_name=da, snap_name=tmp)
        self.assertEqual(self.portal.list_all('ListSnap', 'snap_msg_list', da_name=da), [])

    def test_snapshot_attach(self):
        src = self.volume(vt=self.volume_type({'vda:cntlr_cnt': '2', 'vda:physical_size_factor': '2'}))
        da = vda_driver.PREFIX + src.id
        snap = self.snapshot(src)
        name = vda_driver.SNAP_PREFIX + snap.id
        info = self.driver.initialize_connection_snapshot(snap, {'nqn': HOST1})
        exp = self.portal.GetExp(da_name=da, exp_name=name).exp_msg
        self.assertEqual(exp.snap_name, name)
        self.check_connection(info, exp, HOST1, read_only=True)
        self.driver.terminate_connection_snapshot(snap, {'nqn': HOST1})
        self.assertNotFound(self.portal.GetExp, da_name=da, exp_name=name)
        # A snapshot left exported is unexported by its delete.
        self.driver.initialize_connection_snapshot(snap, {'nqn': HOST2})
        self.driver.delete_snapshot(snap)
        self.assertNotFound(self.portal.GetSnap, da_name=da, snap_name=name)

    def test_setup_errors(self):
        # Without its TLS identity the driver cannot reach the portal.
        with self.assertRaises(exception.VolumeBackendAPIException) as cm:
            make_driver(tls=False, group='vda_no_tls', vda_rpc_timeout=5).check_for_setup_error()
        self.assertIn('unreachable', str(cm.exception))
        with self.assertRaises(exception.VolumeDriverException):
            make_driver(group='vda_no_key', vda_tls_key=None)
        with self.assertRaises(exception.InvalidConfigurationValue):
            make_driver(group='vda_no_addr', vda_portal_address=None)

    def test_under_eventlet(self):
        # cinder-volume runs drivers with eventlet's monkey patching: the
        # driver's gRPC calls and its polling must work there too.
        script = textwrap.dedent("""
            import eventlet
            eventlet.monkey_patch()
            import sys, uuid
            from tests import test_driver as t
            t.setUpModule()
            d = t.make_driver(group='vda_eventlet')
            d.check_for_setup_error()
            ctx = t.context.get_admin_context()
            vol = t.fake_volume.fake_volume_obj(ctx, id=str(uuid.uuid4()), size=1, volume_type_id=None)
            vol.update(d.create_volume(vol))
            info = d.initialize_connection(vol, {'nqn': t.HOST1})
            d.terminate_connection(vol, {'nqn': t.HOST1})
            d.delete_volume(vol)
            print('eventlet ok', d.get_volume_stats(refresh=True)['total_capacity_gb'], info['data']['target_nqn'])
            """)
        out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn('eventlet ok', out.stdout)


if __name__ == '__main__':
    unittest.main()
