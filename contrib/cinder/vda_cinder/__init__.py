"""OpenStack Cinder volume driver for VDA.

Load it as an out-of-tree driver::

    [vda-1]
    volume_driver = vda_cinder.driver.VDADriver

See the README's "OpenStack (Cinder driver)" section.
"""
