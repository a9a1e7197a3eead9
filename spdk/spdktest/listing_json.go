package spdktest

import "strconv"

// One-pass encoders of bdev_get_bdevs' and bdev_lvol_get_lvols' elements:
// the bytes encoding/json writes for them (without HTML escaping, as
// marshal), without its reflection. A promotion lists one lvol per array
// twice (its wait and its lvstore's listing); through encoding/json those
// answers were most of the fake's answer encoding.
// TestListingJSONAsEncodingJSON holds them to encoding/json.

// appendJSON appends j as encoding/json writes it.
func (j *bdevJSON) appendJSON(b []byte) ([]byte, error) {
	str := func(s string) { b = appendStr(b, s) }
	b = append(b, `{"name":`...)
	str(j.Name)
	b = append(b, `,"aliases":`...)
	if j.Aliases == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range j.Aliases {
			if i > 0 {
				b = append(b, ',')
			}
			str(a)
		}
		b = append(b, ']')
	}
	b = append(b, `,"product_name":`...)
	str(j.ProductName)
	b = strconv.AppendUint(append(b, `,"block_size":`...), uint64(j.BlockSize), 10)
	b = strconv.AppendUint(append(b, `,"num_blocks":`...), j.NumBlocks, 10)
	b = append(b, `,"uuid":`...)
	str(j.UUID)
	if j.MDSize != nil {
		b = strconv.AppendUint(append(b, `,"md_size":`...), uint64(*j.MDSize), 10)
	}
	if j.MDInterleave != nil {
		b = strconv.AppendBool(append(b, `,"md_interleave":`...), *j.MDInterleave)
	}
	if j.DIFType != nil {
		b = strconv.AppendInt(append(b, `,"dif_type":`...), int64(*j.DIFType), 10)
	}
	if j.DIFIsHeadOfMD != nil {
		b = strconv.AppendBool(append(b, `,"dif_is_head_of_md":`...), *j.DIFIsHeadOfMD)
	}
	if c := j.DIFChecks; c != nil {
		b = strconv.AppendBool(append(b, `,"enabled_dif_check_types":{"reftag":`...), c.Reftag)
		b = strconv.AppendBool(append(b, `,"apptag":`...), c.Apptag)
		b = strconv.AppendBool(append(b, `,"guard":`...), c.Guard)
		b = append(b, '}')
	}
	l := j.Limits
	b = strconv.AppendUint(append(b, `,"assigned_rate_limits":{"rw_ios_per_sec":`...), l.RWIOs, 10)
	b = strconv.AppendUint(append(b, `,"rw_mbytes_per_sec":`...), l.RWMB, 10)
	b = strconv.AppendUint(append(b, `,"r_mbytes_per_sec":`...), l.ReadMB, 10)
	b = strconv.AppendUint(append(b, `,"w_mbytes_per_sec":`...), l.WritMB, 10)
	b = strconv.AppendBool(append(b, `},"claimed":`...), j.Claimed)
	if j.ClaimType != "" {
		b = append(b, `,"claim_type":`...)
		str(j.ClaimType)
	}
	b = strconv.AppendBool(append(b, `,"zoned":`...), j.Zoned)
	io := j.IOTypes
	for _, f := range [...]struct {
		k string
		v bool
	}{
		{`,"supported_io_types":{"read":`, io.Read}, {`,"write":`, io.Write}, {`,"unmap":`, io.Unmap},
		{`,"write_zeroes":`, io.WriteZeroes}, {`,"flush":`, io.Flush}, {`,"reset":`, io.Reset},
		{`,"compare":`, io.Compare}, {`,"compare_and_write":`, io.CompareAndWrite}, {`,"abort":`, io.Abort},
		{`,"nvme_admin":`, io.NvmeAdmin}, {`,"nvme_io":`, io.NvmeIO},
	} {
		b = strconv.AppendBool(append(b, f.k...), f.v)
	}
	b = append(b, '}')
	if len(j.MemoryDomains) > 0 {
		b = append(b, `,"memory_domains":[`...)
		for i, d := range j.MemoryDomains {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"dma_device_id":`...)
			str(d.ID)
			b = strconv.AppendInt(append(b, `,"dma_device_type":`...), int64(d.Type), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"driver_specific":`...)
	var err error
	if b, err = appendValue(b, j.DriverSpecific); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendJSON appends l as encoding/json writes it.
func (l *lvolJSON) appendJSON(b []byte) ([]byte, error) {
	str := func(s string) { b = appendStr(b, s) }
	b = append(b, `{"alias":`...)
	str(l.Alias)
	b = append(b, `,"uuid":`...)
	str(l.UUID)
	b = append(b, `,"name":`...)
	str(l.Name)
	b = strconv.AppendBool(append(b, `,"is_thin_provisioned":`...), l.Thin)
	b = strconv.AppendBool(append(b, `,"is_snapshot":`...), l.IsSnapshot)
	b = strconv.AppendBool(append(b, `,"is_clone":`...), l.IsClone)
	b = strconv.AppendBool(append(b, `,"is_esnap_clone":`...), l.IsEsnapClone)
	b = strconv.AppendBool(append(b, `,"is_degraded":`...), l.IsDegraded)
	b = append(b, `,"lvs":{"name":`...)
	str(l.Lvs.Name)
	b = append(b, `,"uuid":`...)
	str(l.Lvs.UUID)
	return append(b, "}}"...), nil
}

// appendList appends a listing of elements that encode themselves; a nil
// list is null, as encoding/json writes it.
func appendList[T any, P interface {
	*T
	appendJSON([]byte) ([]byte, error)
}](b []byte, list []T) ([]byte, error) {
	if list == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = P(&list[i]).appendJSON(b); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}
