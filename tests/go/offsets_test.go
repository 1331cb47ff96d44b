package compat

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ListStartOffsets, ListEndOffsets, ListOffsetsAfterMilli and ListMaxTimestampOffsets, with the
// records in one batch (the broker must look inside it for timestamps) and in one batch each.
func TestListOffsets(t *testing.T) {
	for _, oneBatch := range []bool{true, false} {
		t.Run(fmt.Sprintf("oneBatch=%v", oneBatch), func(t *testing.T) {
			b := startBroker(t)
			topic := "go-list-offsets"
			b.createTopic(t, topic, 1, nil)
			// In the past: Kafka 4.x refuses timestamps more than an hour ahead by default.
			base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			const n, maxAt = 10, 6
			ts := func(i int) time.Time {
				if i == maxAt {
					return base.Add(50 * time.Second)
				}
				return base.Add(time.Duration(i) * time.Second)
			}
			cl := b.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Second))
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: ts(i)}
			}
			if oneBatch {
				if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, r := range recs {
					if err := cl.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
			}

			adm := kadm.NewClient(cl)
			ctx := ctxT(t)
			one := func(what string, list func() (kadm.ListedOffsets, error)) kadm.ListedOffset {
				t.Helper()
				l, err := list()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				o, ok := l.Lookup(topic, 0)
				if !ok || o.Err != nil {
					t.Fatalf("%s: %+v", what, o)
				}
				return o
			}
			if o := one("start", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) }); o.Offset != 0 {
				t.Errorf("start offset %d, want 0", o.Offset)
			}
			if o := one("end", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) }); o.Offset != n {
				t.Errorf("end offset %d, want %d", o.Offset, n)
			}
			// First offset whose timestamp >= the target.
			cases := []struct {
				after time.Duration
				want  int64
			}{
				{-time.Millisecond, 0}, {0, 0}, {time.Millisecond, 1}, {1500 * time.Millisecond, 2},
				{5 * time.Second, 5}, {5001 * time.Millisecond, maxAt}, {9 * time.Second, maxAt}, {50 * time.Second, maxAt},
			}
			for _, c := range cases {
				milli := base.Add(c.after).UnixMilli()
				o := one(fmt.Sprintf("after base%+v", c.after), func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, milli, topic) })
				if o.Offset != c.want || o.Timestamp != ts(int(c.want)).UnixMilli() {
					t.Errorf("after base%+v: offset %d timestamp %d, want %d at %d", c.after, o.Offset, o.Timestamp, c.want, ts(int(c.want)).UnixMilli())
				}
			}
			// After every record: Kafka answers offset -1; kadm turns that into the end offset.
			if o := one("after the last timestamp", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctx, base.Add(50*time.Second+time.Millisecond).UnixMilli(), topic)
			}); o.Offset != -1 && o.Offset != n {
				t.Errorf("after the last timestamp: offset %d, want -1 or the end offset %d", o.Offset, n)
			}
			o := one("max timestamp", func() (kadm.ListedOffsets, error) { return adm.ListMaxTimestampOffsets(ctx, topic) })
			if o.Offset != maxAt || o.Timestamp != ts(maxAt).UnixMilli() {
				t.Errorf("max timestamp: offset %d timestamp %d, want %d at %d", o.Offset, o.Timestamp, maxAt, ts(maxAt).UnixMilli())
			}
		})
	}
}

// An empty partition: start = end = 0.
func TestListOffsetsEmpty(t *testing.T) {
	b := startBroker(t)
	topic := "go-list-offsets-empty"
	b.createTopic(t, topic, 2, nil)
	adm := b.admin(t)
	ctx := ctxT(t)
	for name, f := range map[string]func() (kadm.ListedOffsets, error){
		"start": func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) },
		"end":   func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) },
	} {
		l, err := f()
		if err != nil || l.Error() != nil {
			t.Fatalf("%s: %v %v", name, err, l.Error())
		}
		for p := int32(0); p < 2; p++ {
			if o, ok := l.Lookup(topic, p); !ok || o.Offset != 0 {
				t.Errorf("%s offset of empty partition %d: %+v", name, p, o)
			}
		}
	}
}
