import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { apiError } from '../common/api-error.js';
import type { CreateExportDto } from './create-export.dto.js';
import { ExportJob } from './export-job.entity.js';

const EXPORT_ID = /^exp_[0-9a-f]{32}$/;

@Injectable()
export class ExportsService {
  constructor(@InjectRepository(ExportJob) private readonly jobs: Repository<ExportJob>) {}

  async queue(account: string, request: CreateExportDto): Promise<ExportJob> {
    if (request.processingMs) await sleep(request.processingMs);
    const job = this.jobs.create({
      id: `exp_${randomUUID().replaceAll('-', '')}`,
      account,
      datastreamId: request.datastreamId,
      status: 'queued',
      createdAt: new Date().toISOString(),
    });
    // insert, not save: save() reads the row first to choose between INSERT and UPDATE.
    await this.jobs.insert(job);
    return job;
  }

  async remove(account: string, id: string): Promise<void> {
    // An id that cannot be an export's is none, answered without a query (PostgreSQL refuses U+0000 in text).
    const result = EXPORT_ID.test(id) ? await this.jobs.delete({ account, id }) : { affected: 0 };
    if (!result.affected) throw apiError(404, 'not_found', `No export ${id}.`);
  }
}
