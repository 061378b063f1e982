import { Body, Controller, Delete, HttpCode, Param, Post } from '@nestjs/common';
import { Idempotent } from 'nestjs-idempotency';
import { CurrentAccount } from '../auth/current-account.decorator.js';
import { CreateExportDto } from './create-export.dto.js';
import { ExportsService } from './exports.service.js';

@Controller('v1/exports')
export class ExportsController {
  constructor(private readonly exports: ExportsService) {}

  // Not atomic: exports are written through their own repository, not the idempotency transaction,
  // and a long processingMs should not hold a transaction open.
  @Post()
  @HttpCode(202)
  @Idempotent({ atomic: false })
  async create(
    @CurrentAccount() account: string,
    @Body() body: CreateExportDto,
  ): Promise<{ id: string; datastreamId: number; status: 'queued' }> {
    const job = await this.exports.queue(account, body);
    return { id: job.id, datastreamId: job.datastreamId, status: job.status };
  }

  @Delete(':id')
  @Idempotent({ atomic: false })
  async remove(@CurrentAccount() account: string, @Param('id') id: string): Promise<{ id: string; deleted: true }> {
    await this.exports.remove(account, id);
    return { id, deleted: true };
  }
}
