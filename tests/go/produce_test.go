package compat

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Default producer (idempotent, acks=all: InitProducerId + sequence numbers). Keyed records land
// on murmur2(key) % 6 (the Java-compatible default partitioner; it uses the partition count from
// Metadata), every produce succeeds, and offsets per partition are 0,1,2,... in send order.
func TestProduceSyncDefaultIdempotent(t *testing.T) {
	b := startBroker(t)
	topic := "go-produce-keyed"
	b.createTopic(t, topic, 6, nil)
	cl := b.client(t, kgo.DefaultProduceTopic(topic))

	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("key%d", i)), Value: []byte(fmt.Sprintf("value-%d", i))})
	}
	recs = append(recs, &kgo.Record{Key: []byte{}, Value: []byte("empty-key")})
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	// Reference vector from the Java partitioner (SEMANTICS.md P2).
	want := []int32{4, 2, 5, 1, 3, 1, 0, 3, 1, 5}
	for i, p := range want {
		if recs[i].Partition != p {
			t.Errorf("key%d: partition %d, want %d", i, recs[i].Partition, p)
		}
	}
	if p := recs[300].Partition; p != 3 {
		t.Errorf("zero-length key: partition %d, want 3 (murmur2 275646681 %% 6)", p)
	}
	next := map[int32]int64{}
	for i, r := range recs {
		if r.Offset != next[r.Partition] {
			t.Fatalf("record %d: partition %d offset %d, want %d", i, r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
		if r.ProducerID < 0 {
			t.Errorf("record %d: no producer id (idempotence off?)", i)
		}
	}
	if len(next) != 6 {
		t.Errorf("records reached %d partitions, want 6", len(next))
	}
}

// Produced records come back through ConsumePartitions from the start, in per-partition order
// with the same keys, values (null and empty too), headers and timestamps; a start offset inside
// a batch yields the records from that offset on.
func TestConsumePartitionsRoundTrip(t *testing.T) {
	b := startBroker(t)
	topic := "go-roundtrip"
	b.createTopic(t, topic, 3, nil)
	pcl := b.client(t, kgo.DefaultProduceTopic(topic))

	n := 150
	var recs []*kgo.Record
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := 0; i < n; i++ {
		r := &kgo.Record{
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     []byte(strings.Repeat("v", i%17) + fmt.Sprint(i)),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			Headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(fmt.Sprint(i))},
				{Key: "dup", Value: []byte("first")},
				{Key: "dup", Value: []byte("second")},
			},
		}
		switch i % 10 {
		case 3:
			r.Value = nil
		case 4:
			r.Value = []byte{}
		}
		recs = append(recs, r)
	}
	if err := pcl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	got := b.consume(t, topic, map[int32]int64{0: 0, 1: 0, 2: 0}, n)

	byPart := map[int32][]*kgo.Record{}
	for _, r := range got {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	wantPart := map[int32][]*kgo.Record{}
	for _, r := range recs {
		wantPart[r.Partition] = append(wantPart[r.Partition], r)
	}
	for p, want := range wantPart {
		have := byPart[p]
		if len(have) != len(want) {
			t.Fatalf("partition %d: %d records, want %d", p, len(have), len(want))
		}
		for j := range want {
			w, h := want[j], have[j]
			where := fmt.Sprintf("partition %d #%d (%s)", p, j, w.Key)
			if h.Offset != int64(j) || h.Offset != w.Offset {
				t.Errorf("%s: offset %d, want %d (producer said %d)", where, h.Offset, j, w.Offset)
			}
			if !bytes.Equal(h.Key, w.Key) {
				t.Errorf("%s: key %q", where, h.Key)
			}
			if (h.Value == nil) != (w.Value == nil) || !bytes.Equal(h.Value, w.Value) {
				t.Errorf("%s: value %q (nil=%v), want %q (nil=%v)", where, h.Value, h.Value == nil, w.Value, w.Value == nil)
			}
			if !h.Timestamp.Equal(w.Timestamp) {
				t.Errorf("%s: timestamp %v, want %v", where, h.Timestamp, w.Timestamp)
			}
			if len(h.Headers) != len(w.Headers) {
				t.Errorf("%s: %d headers, want %d", where, len(h.Headers), len(w.Headers))
				continue
			}
			for k := range w.Headers {
				if h.Headers[k].Key != w.Headers[k].Key || !bytes.Equal(h.Headers[k].Value, w.Headers[k].Value) {
					t.Errorf("%s: header %d = %s:%q, want %s:%q", where, k, h.Headers[k].Key, h.Headers[k].Value, w.Headers[k].Key, w.Headers[k].Value)
				}
			}
		}
	}

	// Start in the middle of what was produced into partition 0 (batches hold many records).
	p0 := wantPart[0]
	mid := int64(len(p0) / 2)
	tail := b.consume(t, topic, map[int32]int64{0: mid}, len(p0)-int(mid))
	for j, r := range tail {
		if r.Offset != mid+int64(j) || !bytes.Equal(r.Key, p0[mid+int64(j)].Key) {
			t.Fatalf("from offset %d: #%d is offset %d key %q", mid, j, r.Offset, r.Key)
		}
	}
}

// Many small batches pipelined on one connection must be appended in send order, both with the
// idempotent producer (an out-of-order append shows as OUT_OF_ORDER_SEQUENCE_NUMBER) and without
// it (acks=1: it shows as records stored out of order). Repeated: the race is not on every run.
func TestPipelinedProduceKeepsOrder(t *testing.T) {
	for _, idem := range []bool{true, false} {
		for run := 1; run <= 3; run++ {
			ok := t.Run(fmt.Sprintf("idempotent=%v/run=%d", idem, run), func(t *testing.T) {
				b := startBroker(t)
				topic := "go-pipelined"
				b.createTopic(t, topic, 1, nil)
				opts := []kgo.Opt{
					kgo.DefaultProduceTopic(topic),
					kgo.ProducerBatchMaxBytes(512),
					kgo.ProducerLinger(0),
					kgo.RecordPartitioner(kgo.ManualPartitioner()),
				}
				if !idem {
					// (the idempotent producer pipelines up to 5 requests by itself)
					opts = append(opts, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()),
						kgo.MaxProduceRequestsInflightPerBroker(5))
				}
				cl := b.client(t, opts...)
				n := 3000
				recs := make([]*kgo.Record, n)
				for i := range recs {
					recs[i] = &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("%08d", i))}
				}
				if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
					t.Fatalf("ProduceSync: %v", err)
				}
				for i, r := range recs {
					if r.Offset != int64(i) {
						t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
					}
				}
				got := b.consume(t, topic, map[int32]int64{0: 0}, n)
				for i, r := range got {
					if string(r.Value) != fmt.Sprintf("%08d", i) {
						t.Fatalf("offset %d holds record %s", i, r.Value)
					}
				}
			})
			if !ok {
				break // one failed run is enough; repeats only catch an intermittent race
			}
		}
	}
}

// Each codec round-trips, and batches of all codecs can share a partition.
func TestCompressionRoundTrip(t *testing.T) {
	b := startBroker(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	mixed := "go-compressed-mixed"
	b.createTopic(t, mixed, 1, nil)
	per := 200
	value := func(codec string, i int) []byte {
		return []byte(fmt.Sprintf("%s-%d-%s", codec, i, strings.Repeat("lorem ipsum dolor sit amet ", 1+i%7)))
	}
	for ci, c := range codecs {
		topic := "go-compressed-" + c.name
		b.createTopic(t, topic, 1, nil)
		cl := b.client(t, kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(50*time.Millisecond))
		var recs []*kgo.Record
		for i := 0; i < per; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: value(c.name, i)})
		}
		for i := 0; i < per; i++ {
			recs = append(recs, &kgo.Record{Topic: mixed, Key: []byte(fmt.Sprint(ci*per + i)), Value: value(c.name, i)})
		}
		if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
			t.Fatalf("%s: ProduceSync: %v", c.name, err)
		}
		got := b.consume(t, topic, map[int32]int64{0: 0}, per)
		for i, r := range got {
			if r.Offset != int64(i) || !bytes.Equal(r.Value, value(c.name, i)) {
				t.Fatalf("%s: record %d: offset %d value %.40q", c.name, i, r.Offset, r.Value)
			}
		}
		// A start offset inside a compressed batch.
		got = b.consume(t, topic, map[int32]int64{0: 117}, per-117)
		if got[0].Offset != 117 || !bytes.Equal(got[0].Value, value(c.name, 117)) {
			t.Fatalf("%s: from offset 117: first is offset %d", c.name, got[0].Offset)
		}
	}
	got := b.consume(t, mixed, map[int32]int64{0: 0}, per*len(codecs))
	for i, r := range got {
		c := codecs[i/per].name
		if r.Offset != int64(i) || string(r.Key) != fmt.Sprint(i) || !bytes.Equal(r.Value, value(c, i%per)) {
			t.Fatalf("mixed: record %d: offset %d key %s value %.40q", i, r.Offset, r.Key, r.Value)
		}
	}
}

// A topic's max.message.bytes refuses a larger batch with MESSAGE_TOO_LARGE; nothing is
// appended and the producer goes on.
func TestMessageTooLarge(t *testing.T) {
	b := startBroker(t)
	topic := "go-too-large"
	limit := "1024"
	b.createTopic(t, topic, 1, map[string]*string{"max.message.bytes": &limit})
	cl := b.client(t, kgo.DefaultProduceTopic(topic))
	// Incompressible (franz-go compresses with snappy by default; the limit is on the stored batch).
	big := make([]byte, 4000)
	rand.New(rand.NewSource(1)).Read(big)
	err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: big}).FirstErr()
	if !isErr(err, kerr.MessageTooLarge) {
		t.Fatalf("producing 4000 bytes to a topic with max.message.bytes=1024: err = %v, want MESSAGE_TOO_LARGE", err)
	}
	ok := &kgo.Record{Value: []byte("small")}
	if err := cl.ProduceSync(ctxT(t), ok).FirstErr(); err != nil {
		t.Fatalf("small record after the refused one: %v", err)
	}
	if ok.Offset != 0 {
		t.Fatalf("small record at offset %d, want 0 (the refused record must not be appended)", ok.Offset)
	}
	got := b.consume(t, topic, map[int32]int64{0: 0}, 1)
	if string(got[0].Value) != "small" {
		t.Fatalf("read back %q", got[0].Value)
	}
}

// A consumer polling an empty partition receives a record produced while it waits.
func TestConsumeWaitsForNewRecord(t *testing.T) {
	b := startBroker(t)
	topic := "go-long-poll"
	b.createTopic(t, topic, 1, nil)
	ccl := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(5*time.Second))
	pcl := b.client(t, kgo.DefaultProduceTopic(topic))

	ctx := ctxT(t)
	fetched := make(chan []*kgo.Record, 1)
	go func() {
		for {
			fs := ccl.PollFetches(ctx)
			if ctx.Err() != nil {
				close(fetched)
				return
			}
			if recs := fs.Records(); len(recs) > 0 {
				fetched <- recs
				return
			}
		}
	}()
	if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case recs, ok := <-fetched:
		if !ok {
			t.Fatal("timed out waiting for the record")
		}
		if len(recs) != 1 || string(recs[0].Value) != "late" || recs[0].Offset != 0 {
			t.Fatalf("got %d records, first %q at %d", len(recs), recs[0].Value, recs[0].Offset)
		}
	case <-time.After(opTimeout):
		t.Fatal("timed out waiting for the record")
	}
}
