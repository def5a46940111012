package dispatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ClickHouseIncidentSink names the built-in writer of every incident version
// to the ClickHouse incidents table (routing never filters it: it is the
// record).
const ClickHouseIncidentSink = "clickhouse-incidents"

// incidentKeyPrefix starts the tokenwatch.delivered keys of incident
// deliveries: "incident/<sink>/<incident id>". Alert deliveries are keyed
// "<sink>/<alert id>", so the two never meet (a sink named "incident" would
// read "<sink>/<id>" as an alert id whose value does not parse, and skip it).
const incidentKeyPrefix = "incident/"

// incidentMark is the value of an incident delivery in tokenwatch.delivered.
type incidentMark struct {
	Version int             `json:"version"`
	At      int64           `json:"at"` // Unix ms, wall clock
	Receipt deliver.Receipt `json:"receipt,omitempty"`
}

// incidentSet is one sink's memory of the newest version of each incident it
// delivered, and the receipt to update it with.
type incidentSet struct {
	sink   string
	window time.Duration
	marks  map[string]incidentMark
	pruned time.Time
}

func (s *incidentSet) last(id string) (incidentMark, bool) {
	m, ok := s.marks[id]
	return m, ok && time.Since(time.UnixMilli(m.At)) < s.window
}

// mark records that inc's version was delivered, durably, before the
// consumer commits its offset.
func (s *incidentSet) mark(ctx context.Context, w *kafka.Writer, inc *schemas.Incident, r deliver.Receipt) error {
	now := time.Now()
	m := incidentMark{Version: inc.Version, At: now.UnixMilli(), Receipt: r}
	v, _ := json.Marshal(m)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(incidentKeyPrefix + s.sink + "/" + inc.ID), Value: v}); err != nil {
		return fmt.Errorf("record incident delivery: %w", broker.Condense(err))
	}
	s.marks[inc.ID] = m
	if now.Sub(s.pruned) > time.Hour {
		for id, m := range s.marks {
			if now.Sub(time.UnixMilli(m.At)) >= s.window {
				delete(s.marks, id)
			}
		}
		s.pruned = now
	}
	return nil
}

// loadIncidentMarks reads tokenwatch.delivered to its end for one sink's
// incident deliveries, keeping the highest version of each incident.
func loadIncidentMarks(ctx context.Context, kafkaCfg broker.Config, window time.Duration, sink string) (*incidentSet, error) {
	s := &incidentSet{sink: sink, window: window, marks: map[string]incidentMark{}, pruned: time.Now()}
	n, err := broker.Partitions(ctx, kafkaCfg, schemas.TopicDelivered)
	if err != nil {
		return nil, err
	}
	prefix := incidentKeyPrefix + sink + "/"
	for part := 0; part < n; part++ {
		err := broker.ReadPartition(ctx, kafkaCfg, schemas.TopicDelivered, part, func(m kafka.Message) {
			id, ok := strings.CutPrefix(string(m.Key), prefix)
			if !ok {
				return
			}
			var mk incidentMark
			if json.Unmarshal(m.Value, &mk) != nil || time.Since(time.UnixMilli(mk.At)) >= window {
				return
			}
			if old, ok := s.marks[id]; !ok || mk.Version >= old.Version {
				s.marks[id] = mk
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newestVersions keeps, of each incident in incs, only its highest version,
// in the order the kept versions arrived.
func newestVersions(incs []schemas.Incident) []schemas.Incident {
	best := map[string]int{} // id → index in incs
	for i := range incs {
		if j, ok := best[incs[i].ID]; !ok || incs[i].Version > incs[j].Version {
			best[incs[i].ID] = i
		}
	}
	out := make([]schemas.Incident, 0, len(best))
	for i := range incs {
		if best[incs[i].ID] == i {
			out = append(out, incs[i])
		}
	}
	return out
}

// RunIncidentSink consumes tokenwatch.incidents in the sink's own consumer
// group ("<prefix>-incidents-<sink>"), so a broken sink only lags itself.
// Of each incident it delivers only the newest version in a batch, and only
// when it is newer than the last version this sink delivered (remembered
// with the sink's receipt in tokenwatch.delivered, across restarts, for
// deliver.dedup_window after the last delivery). Routes filter incidents as
// they do alerts (deliver.Routes.IncidentTo). When retries are exhausted the
// version goes to tokenwatch.alerts.deadletter (stage "deliver-incident")
// and is not marked, so the incident's next version is still delivered.
func (d *Role) RunIncidentSink(ctx context.Context, s deliver.Sink) error {
	group := d.kafka.Group("incidents-" + s.Name())
	marks, err := loadIncidentMarks(ctx, d.kafka, d.cfg.DedupWindow, s.Name())
	if err != nil {
		return err
	}
	r := broker.NewReader(d.kafka, schemas.TopicIncidents, group)
	defer r.Close()
	dead := broker.NewWriter(d.kafka, schemas.TopicAlertDeadLetter)
	defer dead.Close()
	w := broker.NewWriter(d.kafka, schemas.TopicDelivered)
	defer w.Close()
	log := d.log.With("component", "deliver", "sink", s.Name(), "stream", "incidents")
	return broker.Consume(ctx, r, 500, d.cfg.FlushInterval, log, func(ctx context.Context, batch []kafka.Message) error {
		incs := make([]schemas.Incident, 0, len(batch))
		var deadMsgs []kafka.Message
		for _, m := range batch {
			var inc schemas.Incident
			if err := json.Unmarshal(m.Value, &inc); err != nil || inc.ID == "" {
				reason := "incident without id"
				if err != nil {
					reason = err.Error()
				}
				deadMsgs = append(deadMsgs, broker.DeadLetterMessage("decode", s.Name(), broker.Where(m), reason, m.Value))
				continue
			}
			if !d.cfg.Routes.IncidentTo(s.Name(), inc) {
				continue
			}
			incs = append(incs, inc)
		}
		deadIncidents := 0
		for _, inc := range newestVersions(incs) {
			prev, seen := marks.last(inc.ID)
			if seen && inc.Version <= prev.Version {
				continue
			}
			receipt, attempts, err := deliver.SendIncidentWithRetry(ctx, s, inc, prev.Receipt, d.cfg.Retry)
			d.m.retries.WithLabelValues(s.Name()).Add(float64(attempts - 1))
			if err != nil {
				log.Error("sink failed on an incident, dead-lettering", "incident", inc.ID, "version", inc.Version, "attempts", attempts, "err", err)
				v, _ := json.Marshal(&inc)
				deadMsgs = append(deadMsgs, broker.DeadLetterMessage("deliver-incident", s.Name(), schemas.TopicIncidents,
					fmt.Sprintf("after %d attempts: %v", attempts, err), v))
				deadIncidents++ // counted once the dead letter is acknowledged
				continue
			}
			if err := marks.mark(ctx, w, &inc, receipt); err != nil {
				return err
			}
			d.Stats.add(&d.Stats.incidents, s.Name(), 1)
			d.m.incidentsSent.WithLabelValues(s.Name()).Inc()
		}
		if len(deadMsgs) > 0 {
			if err := dead.WriteMessages(ctx, deadMsgs...); err != nil {
				return fmt.Errorf("produce %d incident dead letters: %w", len(deadMsgs), broker.Condense(err))
			}
		}
		if deadIncidents > 0 {
			d.Stats.add(&d.Stats.deadIncidents, s.Name(), deadIncidents)
			d.m.failures.WithLabelValues(s.Name()).Add(float64(deadIncidents))
			d.m.incidentDeadLetters.WithLabelValues(s.Name()).Add(float64(deadIncidents))
		}
		d.km.ConsumerLag.WithLabelValues(group, schemas.TopicIncidents).Set(float64(r.Stats().Lag))
		return nil
	})
}

// RunIncidentWriter writes every incident version to the ClickHouse
// incidents table in batches, in its own consumer group; the table's
// ReplacingMergeTree(version) keeps the newest of each incident.
func (d *Role) RunIncidentWriter(ctx context.Context) error {
	if d.ch == nil {
		return fmt.Errorf("incidents writer: no ClickHouse configured")
	}
	group := d.kafka.Group("sink-" + ClickHouseIncidentSink)
	r := broker.NewReader(d.kafka, schemas.TopicIncidents, group)
	defer r.Close()
	dead := broker.NewWriter(d.kafka, schemas.TopicAlertDeadLetter)
	defer dead.Close()
	log := d.log.With("component", "deliver", "sink", ClickHouseIncidentSink)
	return broker.Consume(ctx, r, 500, d.cfg.FlushInterval, log, func(ctx context.Context, batch []kafka.Message) error {
		incs := make([]schemas.Incident, 0, len(batch))
		var deadMsgs []kafka.Message
		for _, m := range batch {
			var inc schemas.Incident
			if err := json.Unmarshal(m.Value, &inc); err != nil {
				deadMsgs = append(deadMsgs, broker.DeadLetterMessage("decode", ClickHouseIncidentSink, broker.Where(m), err.Error(), m.Value))
				continue
			}
			incs = append(incs, inc)
		}
		// ClickHouse down: this errors and Consume retries the batch.
		if err := d.ch.WriteIncidents(ctx, incs); err != nil {
			return err
		}
		if len(deadMsgs) > 0 {
			if err := dead.WriteMessages(ctx, deadMsgs...); err != nil {
				return err
			}
		}
		d.Stats.add(&d.Stats.incidents, ClickHouseIncidentSink, len(incs))
		d.m.incidentsSent.WithLabelValues(ClickHouseIncidentSink).Add(float64(len(incs)))
		d.km.ConsumerLag.WithLabelValues(group, schemas.TopicIncidents).Set(float64(r.Stats().Lag))
		return nil
	})
}
