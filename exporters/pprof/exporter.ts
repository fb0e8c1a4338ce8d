/**
 * Profiles → pprof: one gzip'd pprof file per incoming batch (one receiver
 * window) in `directory`, and the on-demand profiling API (/debug/pprof/) on
 * the collector's HTTP server. A failed write is counted and reported as
 * recoverable_error; the next batch tries again.
 */
import { resolve } from 'node:path';
import type { Component, Consumer, CreateSettings, Host } from '../../collector/component.js';
import { profileSampleCount, type ProfileBatch } from '../../collector/data/profiles.js';
import type { PprofConfig } from './config.js';
import { encodePprof } from './pprof-encoding.js';
import { ProfileDirectory } from './profile-directory.js';
import { ProfileWindows } from './profile-windows.js';
import { PROFILING_PATH, registerProfilingRoutes } from './profiling-routes.js';

export class PprofExporter implements Component, Consumer<'profiles'> {
  readonly consumers = { profiles: this };
  private readonly windows: ProfileWindows;
  private readonly directory?: ProfileDirectory;
  /** Writes go one at a time, so that file names and retention see each other's files. */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly settings: CreateSettings, config: PprofConfig) {
    this.windows = new ProfileWindows(config.max_concurrent_requests, config.max_samples_per_request);
    if (config.write_files) this.directory = new ProfileDirectory(resolve(config.directory), config.max_files);
  }

  async consume(batch: ProfileBatch): Promise<void> {
    const samples = profileSampleCount(batch);
    const took = this.windows.add(batch);
    if (took.droppedSamples > 0) this.settings.telemetry.dropped('profiles', took.droppedSamples, 'profiling_request_full');
    if (this.directory) {
      const write = this.writing.then(() => this.writeFile(this.directory!, batch, samples));
      this.writing = write;
      await write;
    } else if (took.windows > 0) {
      this.settings.telemetry.exported('profiles', samples);
    } else if (samples > 0) {
      this.settings.telemetry.dropped('profiles', samples, 'no_profiling_request');
    }
  }

  private async writeFile(directory: ProfileDirectory, batch: ProfileBatch, samples: number): Promise<void> {
    let path: string;
    try {
      path = await directory.write(batch.startTimeMs, await encodePprof([batch], { startMs: batch.startTimeMs, endMs: batch.endTimeMs }));
    } catch (error) {
      this.settings.telemetry.exportFailed('profiles', samples);
      this.settings.status.report('recoverable_error', `cannot write a profile to ${directory.path}: ${(error as Error).message}`);
      return;
    }
    this.settings.telemetry.exported('profiles', samples);
    this.settings.logger.debug({ path, samples }, 'profile written');
    try {
      await directory.prune();
      this.settings.status.report('ok');
    } catch (error) {
      this.settings.status.report('recoverable_error', `cannot remove old profiles from ${directory.path}: ${(error as Error).message}`);
    }
  }

  async start(host: Host): Promise<void> {
    if (registerProfilingRoutes(host.http, this.windows)) this.settings.logger.info({ path: PROFILING_PATH }, 'serving the profiling API');
    else this.settings.logger.warn({ path: PROFILING_PATH }, 'another pprof exporter serves the profiling API; this one only writes files');
  }

  /** Answers pending profiling requests with what they collected, and waits for the files being written. */
  async shutdown(): Promise<void> {
    this.windows.closeAll();
    await this.writing;
  }
}
