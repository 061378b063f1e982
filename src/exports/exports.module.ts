import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ExportJob } from './export-job.entity.js';
import { ExportsController } from './exports.controller.js';
import { ExportsService } from './exports.service.js';

@Module({
  imports: [TypeOrmModule.forFeature([ExportJob])],
  controllers: [ExportsController],
  providers: [ExportsService],
})
export class ExportsModule {}
