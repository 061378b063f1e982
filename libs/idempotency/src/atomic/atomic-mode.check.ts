import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { IdempotentMetadata } from '../idempotent.decorator.js';
import { RESOLVED_OPTIONS } from '../idempotency.constants.js';
import type { ResolvedModuleOptions } from '../idempotency.options.js';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from '../store/idempotency-store.js';
import { atomicUnsupportedReasonOf } from '../store/atomic-support.js';

/**
 * Stops the app at start-up when a route (or the module) asks for atomic mode on a store that
 * cannot give it, naming the routes: a silent fallback would quietly drop the guarantee (R22).
 */
@Injectable()
export class AtomicModeCheck implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedModuleOptions,
  ) {}

  onModuleInit(): void {
    const asking = this.routesAskingForAtomic();
    if (asking.length === 0) return;
    const reason = atomicUnsupportedReasonOf(this.store);
    if (!reason) return;
    throw new Error(
      `nestjs-idempotency: atomic mode is asked for by ${asking.join(', ')}, but ${reason} ` +
        'Run these routes on MySQL/MariaDB or PostgreSQL, or set atomic: false.',
    );
  }

  private routesAskingForAtomic(): string[] {
    const moduleWide = this.options.routeDefaults.atomic === true;
    const asking = moduleWide ? ['IdempotencyModule.forRoot({ atomic: true })'] : [];
    for (const wrapper of this.discovery.getControllers()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (!instance) continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = (prototype as Record<string, unknown>)[name];
        if (typeof handler !== 'function') continue;
        const declared = this.reflector.get(IdempotentMetadata, handler);
        if (declared?.atomic === true && !moduleWide) asking.push(`${wrapper.name}.${name}`);
      }
    }
    return asking;
  }
}
