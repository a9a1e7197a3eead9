package nvmeof

import "testing"

func BenchmarkParseNQN(b *testing.B) {
	for b.Loop() {
		if _, err := ParseNQN("nqn.2016-06.io.spdk:vda-exp-da0-exp0"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpNQN(b *testing.B) {
	for b.Loop() {
		if _, err := ExpNQN("da-0", "exp-0"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeExpNQN(b *testing.B) {
	n := NQN("nqn.2016-06.io.spdk:vda-exp-da--0-exp--0")
	for b.Loop() {
		if _, _, err := DecodeExpNQN(n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseName(b *testing.B) {
	s := VDBdevName(idA)
	for b.Loop() {
		if _, ok := ParseName(s); !ok {
			b.Fatal(s)
		}
	}
}

func BenchmarkParseListenerConf(b *testing.B) {
	for b.Loop() {
		if _, err := ParseListenerConf(tutorialConf); err != nil {
			b.Fatal(err)
		}
	}
}
