// Package strictjson decodes the JSON configurations users hand to VDA
// (--pd-conf, --da-conf, --listener-conf) strictly: one object whose keys
// are exactly the target's, each at most once, with values of the right
// type and nothing after it. encoding/json alone matches keys without
// regard to case, keeps the last of duplicate keys and ignores what
// follows the first value; a configuration that means something other
// than what it says is refused here instead, with a message that names
// the key.
package strictjson
