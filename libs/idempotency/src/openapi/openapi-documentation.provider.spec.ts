import { describe, expect, it } from '@jest/globals';
import { Controller, Get, Post, Put } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Idempotent } from '../idempotent.decorator.js';
import { IdempotencyModule } from '../idempotency.module.js';
import type { IdempotencyModuleOptions } from '../idempotency.options.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import { OPENAPI_DOCUMENTATION, type DocumentedRoutes } from './openapi-documentation.provider.js';

// Never called: documenting routes needs the module, not a store.
const store = {} as IdempotencyStore;

@Controller('orders')
class OrdersController {
  @Post()
  @Idempotent()
  create(): void {}

  @Get(':id')
  @Idempotent()
  findOne(): void {}

  @Post(':id/notes')
  note(): void {}

  @Put(':id')
  replace(): void {}

  helper(): void {}
}

async function documentedWith(options: IdempotencyModuleOptions, async = false): Promise<DocumentedRoutes> {
  const idempotency = async
    ? IdempotencyModule.forRootAsync({ useFactory: async () => ({ store, ...options }) })
    : IdempotencyModule.forRoot({ store, ...options });
  const moduleRef = await Test.createTestingModule({
    imports: [idempotency],
    controllers: [OrdersController],
  }).compile();
  try {
    return moduleRef.get<DocumentedRoutes>(OPENAPI_DOCUMENTATION);
  } finally {
    await moduleRef.close();
  }
}

describe('openApiDocumentationProvider', () => {
  it('documents, once the module is compiled, the routes the library treats as idempotent (R25, R1)', async () => {
    await expect(documentedWith({})).resolves.toEqual(['OrdersController.create']);
  });

  it('documents them too when the options come from forRootAsync (R25)', async () => {
    await expect(documentedWith({ required: true }, true)).resolves.toEqual(['OrdersController.create']);
  });

  it('documents every POST, PATCH and DELETE with applyToAllWrites, never a GET or PUT (R25, R1)', async () => {
    await expect(documentedWith({ applyToAllWrites: true })).resolves.toEqual(['OrdersController.create', 'OrdersController.note']);
  });
});
