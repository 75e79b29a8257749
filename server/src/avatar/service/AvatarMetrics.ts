/** Prometheus metrics of avatar sessions and workers (registered on the server's registry). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class AvatarMetrics {
  readonly workers: Gauge;
  readonly sessions: Gauge;
  readonly personalViews: Gauge;
  readonly startSeconds: Histogram;
  readonly recoverySeconds: Histogram;
  readonly runnerDeaths: Counter;
  readonly renderedFrames: Counter;
  readonly renderSeconds: Counter;
  readonly motionFrames: Counter<'outcome'>;
  readonly audioDelayMs: Gauge;
  readonly audioTapPackets: Counter<'outcome'>;
  readonly audioTapConcealedSeconds: Counter;
  readonly earlyFrames: Counter;
  readonly droppedFrames: Counter;
  readonly renderMs: Histogram<'generator'>;
  readonly qualityLevel: Gauge<'session' | 'generator'>;
  readonly qualityChanges: Counter<'direction'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.workers = new Gauge({ name: 'avatar_workers', help: 'Registered avatar workers', registers });
    this.sessions = new Gauge({ name: 'avatar_sessions', help: 'Avatar sessions', registers });
    this.personalViews = new Gauge({ name: 'avatar_personal_views', help: 'Personal free-view streams rendered', registers });
    this.startSeconds = new Histogram({ name: 'avatar_session_start_seconds', help: 'Owner join to first avatar frame published', buckets: [0.25, 0.5, 1, 2, 4, 8], registers });
    this.runnerDeaths = new Counter({ name: 'avatar_runner_deaths_total', help: 'Avatar runners that died while their worker stayed connected (the session was reassigned or failed)', registers });
    this.renderedFrames = new Counter({ name: 'avatar_rendered_frames_total', help: 'Frames rendered by avatar workers (all views)', registers });
    this.renderSeconds = new Counter({ name: 'avatar_render_seconds_total', help: 'Time avatar workers spent rendering', registers });
    this.motionFrames = new Counter({ name: 'avatar_motion_frames_total', help: 'Motion frames received by avatar workers, by outcome', labelNames: ['outcome'] as const, registers });
    this.audioDelayMs = new Gauge({ name: 'avatar_voice_audio_delay_ms', help: 'Largest lip-sync delay applied to a voice avatar\'s republished audio', registers });
    this.audioTapPackets = new Counter({ name: 'avatar_voice_tap_packets_total', help: 'Owner microphone packets a voice avatar worker received on its audio tap, by outcome', labelNames: ['outcome'] as const, registers });
    this.audioTapConcealedSeconds = new Counter({ name: 'avatar_voice_tap_concealed_seconds_total', help: 'Audio lost on the audio tap and replaced by silence', registers });
    this.earlyFrames = new Counter({ name: 'avatar_early_frames_total', help: 'Avatar frames rendered ahead of the frame clock because the motion jumped', registers });
    this.droppedFrames = new Counter({ name: 'avatar_dropped_frames_total', help: 'Avatar frames dropped because the previous frame was still rendering (back-pressure, not queued)', registers });
    this.renderMs = new Histogram({ name: 'avatar_render_ms', help: 'Render time of one avatar frame (one view) in its worker, by generator (from worker:stats)', labelNames: ['generator'] as const, buckets: [1, 2, 5, 10, 20, 40, 80, 160, 320], registers });
    this.qualityLevel = new Gauge({ name: 'avatar_session_quality_level', help: 'Quality-of-service level of each avatar session (0: nominal size and frame rate; higher: smaller, then slower)', labelNames: ['session', 'generator'] as const, registers });
    this.qualityChanges = new Counter({ name: 'avatar_quality_changes_total', help: 'Avatar sessions whose worker lowered (down) or restored (up) their size or frame rate', labelNames: ['direction'] as const, registers });
    this.recoverySeconds = new Histogram({ name: 'avatar_session_recovery_seconds', help: 'Renderer lost to avatar video back', buckets: [0.25, 0.5, 1, 2, 4, 8], registers });
  }
}
