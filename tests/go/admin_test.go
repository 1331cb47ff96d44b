package compat

import (
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func sp(s string) *string { return &s }

// Metadata as kadm sees it: one broker at the listening address, which is the controller, and
// a cluster id.
func TestClusterMetadata(t *testing.T) {
	b := startBroker(t)
	adm := b.admin(t)
	md, err := adm.BrokerMetadata(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 {
		t.Fatalf("brokers: %+v, want 1", md.Brokers)
	}
	br := md.Brokers[0]
	host, port, _ := strings.Cut(b.Addr, ":")
	if br.Host != host || strconv.Itoa(int(br.Port)) != port || br.NodeID != 1 {
		t.Errorf("broker %+v, want node 1 at %s", br, b.Addr)
	}
	if md.Controller != br.NodeID {
		t.Errorf("controller %d, want %d", md.Controller, br.NodeID)
	}
	if md.Cluster == "" {
		t.Error("empty cluster id")
	}
}

// Create, list, describe, grow and delete topics; the error cases answer with Kafka's codes.
func TestTopicLifecycle(t *testing.T) {
	b := startBroker(t)
	adm := b.admin(t)
	ctx := ctxT(t)
	topic := "go-admin-topic"

	created, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": sp("3600000")}, topic)
	if err != nil {
		t.Fatal(err)
	}
	c := created[topic]
	if c.Err != nil {
		t.Fatalf("CreateTopics: %v %s", c.Err, c.ErrMessage)
	}
	if c.NumPartitions != 3 || c.ReplicationFactor != 1 {
		t.Errorf("CreateTopics response: partitions %d rf %d, want 3 and 1", c.NumPartitions, c.ReplicationFactor)
	}
	if c.ID == (kadm.TopicID{}) {
		t.Error("CreateTopics returned no topic id")
	}
	if cfg, ok := c.Configs["retention.ms"]; !ok || cfg.Value == nil || *cfg.Value != "3600000" {
		t.Errorf("CreateTopics config retention.ms = %+v", cfg)
	}

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has(topic) {
		t.Fatalf("ListTopics: %v lacks %s", topics.Names(), topic)
	}
	d := topics[topic]
	if d.Err != nil || d.ID != c.ID || d.IsInternal {
		t.Errorf("topic detail: err %v id %v internal %v (created id %v)", d.Err, d.ID, d.IsInternal, c.ID)
	}
	if len(d.Partitions) != 3 {
		t.Fatalf("%d partitions, want 3", len(d.Partitions))
	}
	for p := int32(0); p < 3; p++ {
		pd, ok := d.Partitions[p]
		if !ok || pd.Err != nil || pd.Leader != 1 || len(pd.Replicas) != 1 || pd.Replicas[0] != 1 || len(pd.ISR) != 1 || pd.ISR[0] != 1 {
			t.Errorf("partition %d: %+v", p, pd)
		}
	}

	// Grow 3 -> 5 (CreatePartitions adds), then refuse shrinking and no-ops.
	cp, err := adm.CreatePartitions(ctx, 2, topic)
	if err != nil || cp.Error() != nil {
		t.Fatalf("CreatePartitions +2: %v %v", err, cp.Error())
	}
	topics, err = adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics[topic].Partitions); n != 5 {
		t.Fatalf("after CreatePartitions: %d partitions, want 5", n)
	}
	if pd := topics[topic].Partitions[4]; pd.Leader != 1 {
		t.Errorf("new partition 4: %+v", pd)
	}
	cp, err = adm.UpdatePartitions(ctx, 2, topic)
	if err != nil {
		t.Fatal(err)
	}
	if !isErr(cp.Error(), kerr.InvalidPartitions) {
		t.Errorf("shrinking to 2 partitions: %v, want INVALID_PARTITIONS", cp.Error())
	}
	cp, err = adm.UpdatePartitions(ctx, 5, "go-admin-no-such-topic")
	if err != nil {
		t.Fatal(err)
	}
	if !isErr(cp.Error(), kerr.UnknownTopicOrPartition) {
		t.Errorf("CreatePartitions on an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", cp.Error())
	}

	// A produce to a new partition works at once.
	cl := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r := &kgo.Record{Topic: topic, Partition: 4, Value: []byte("x")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil || r.Offset != 0 {
		t.Fatalf("produce to new partition 4: %v offset %d", err, r.Offset)
	}

	// Errors on create.
	again, err := adm.CreateTopics(ctx, 1, 1, nil, topic)
	if err != nil {
		t.Fatal(err)
	}
	if !isErr(again[topic].Err, kerr.TopicAlreadyExists) {
		t.Errorf("creating an existing topic: %v, want TOPIC_ALREADY_EXISTS", again[topic].Err)
	}
	rf3, err := adm.CreateTopics(ctx, 1, 3, nil, "go-admin-rf3")
	if err != nil {
		t.Fatal(err)
	}
	if !isErr(rf3["go-admin-rf3"].Err, kerr.InvalidReplicationFactor) {
		t.Errorf("rf=3 on one broker: %v, want INVALID_REPLICATION_FACTOR", rf3["go-admin-rf3"].Err)
	}
	bad, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"no.such.config": sp("1")}, "go-admin-badcfg")
	if err != nil {
		t.Fatal(err)
	}
	if !isErr(bad["go-admin-badcfg"].Err, kerr.InvalidConfig) {
		t.Errorf("unknown config key: %v, want INVALID_CONFIG", bad["go-admin-badcfg"].Err)
	}
	badName, err := adm.CreateTopics(ctx, 1, 1, nil, "bad/name")
	if err != nil {
		t.Fatal(err)
	}
	if !isErr(badName["bad/name"].Err, kerr.InvalidTopicException) {
		t.Errorf("topic name with '/': %v, want INVALID_TOPIC_EXCEPTION", badName["bad/name"].Err)
	}
	// Defaults: -1 partitions and rf take the broker's (num.partitions=1).
	def, err := adm.CreateTopics(ctx, -1, -1, nil, "go-admin-defaults")
	if err != nil || def.Error() != nil {
		t.Fatalf("create with broker defaults: %v %v", err, def.Error())
	}
	if d := def["go-admin-defaults"]; d.NumPartitions != 1 || d.ReplicationFactor != 1 {
		t.Errorf("defaults: %d partitions rf %d, want 1 and 1", d.NumPartitions, d.ReplicationFactor)
	}
	// validate only
	val, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "go-admin-validate")
	if err != nil || val.Error() != nil {
		t.Fatalf("validate-only create: %v %v", err, val.Error())
	}

	topics, err = adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"go-admin-rf3", "go-admin-badcfg", "go-admin-validate"} {
		if topics.Has(absent) {
			t.Errorf("%s exists after a failed or validate-only create", absent)
		}
	}

	// Delete.
	del, err := adm.DeleteTopics(ctx, topic)
	if err != nil || del.Error() != nil {
		t.Fatalf("DeleteTopics: %v %v", err, del.Error())
	}
	topics, err = adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has(topic) {
		t.Errorf("%s still listed after delete", topic)
	}
	del, err = adm.DeleteTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if !isErr(del.Error(), kerr.UnknownTopicOrPartition) {
		t.Errorf("deleting a deleted topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", del.Error())
	}
}

func configMap(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeConfigs %s: %v %v", topic, err, rc.Err)
	}
	m := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		m[c.Key] = c
	}
	return m
}

func val(c kadm.Config) string {
	if c.Value == nil {
		return "<nil>"
	}
	return *c.Value
}

// DescribeConfigs lists the topic configs with values and sources; IncrementalAlterConfigs sets
// and deletes; bad keys and values are refused without changing anything.
func TestDescribeAlterConfigs(t *testing.T) {
	b := startBroker(t)
	adm := b.admin(t)
	ctx := ctxT(t)
	topic := "go-admin-configs"
	b.createTopic(t, topic, 1, map[string]*string{"segment.bytes": sp("1048576")})

	m := configMap(t, adm, topic)
	for _, k := range []string{"retention.ms", "retention.bytes", "segment.bytes", "max.message.bytes", "cleanup.policy", "message.timestamp.type", "min.insync.replicas"} {
		if _, ok := m[k]; !ok {
			t.Errorf("DescribeConfigs lacks %s", k)
		}
	}
	if c := m["segment.bytes"]; val(c) != "1048576" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("segment.bytes = %s (source %v), want 1048576 from DYNAMIC_TOPIC_CONFIG", val(c), c.Source)
	}
	if c := m["retention.ms"]; val(c) != "604800000" || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms = %s (source %v), want the default 604800000", val(c), c.Source)
	}
	if c := m["max.message.bytes"]; val(c) != "1048588" {
		t.Errorf("max.message.bytes = %s, want 1048588", val(c))
	}

	alter := func(ops ...kadm.AlterConfig) error {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx, ops, topic)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rs.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Err
	}
	if err := alter(
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: sp("3600000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.message.bytes", Value: sp("2048")},
	); err != nil {
		t.Fatalf("IncrementalAlterConfigs SET: %v", err)
	}
	m = configMap(t, adm, topic)
	if c := m["retention.ms"]; val(c) != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("after SET retention.ms = %s (source %v)", val(c), c.Source)
	}
	if val(m["max.message.bytes"]) != "2048" || val(m["segment.bytes"]) != "1048576" {
		t.Errorf("after SET: max.message.bytes %s segment.bytes %s", val(m["max.message.bytes"]), val(m["segment.bytes"]))
	}
	if err := alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}); err != nil {
		t.Fatalf("IncrementalAlterConfigs DELETE: %v", err)
	}
	m = configMap(t, adm, topic)
	if c := m["retention.ms"]; val(c) != "604800000" || c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("after DELETE retention.ms = %s (source %v), want the default", val(c), c.Source)
	}
	if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.config", Value: sp("1")}); !isErr(err, kerr.InvalidConfig) {
		t.Errorf("SET of an unknown key: %v, want INVALID_CONFIG", err)
	}
	if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: sp("soon")}); !isErr(err, kerr.InvalidConfig) {
		t.Errorf("SET retention.ms=soon: %v, want INVALID_CONFIG", err)
	}
	if v := val(configMap(t, adm, topic)["retention.ms"]); v != "604800000" {
		t.Errorf("refused alters changed retention.ms to %s", v)
	}

	// The legacy AlterConfigs (whole-state replace) API.
	rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: sp("7200000")}}, topic)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rs.On(topic, nil); r.Err != nil {
		t.Fatalf("AlterConfigs: %v", r.Err)
	}
	m = configMap(t, adm, topic)
	if val(m["retention.ms"]) != "7200000" {
		t.Errorf("after AlterConfigs retention.ms = %s, want 7200000", val(m["retention.ms"]))
	}
	if c := m["segment.bytes"]; c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("AlterConfigs replaces the whole set: segment.bytes should be back to its default, is %s", val(c))
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "go-admin-no-such-topic")
	if err == nil {
		rc, _ := rcs.On("go-admin-no-such-topic", nil)
		err = rc.Err
	}
	if !isErr(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("DescribeConfigs of an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}
