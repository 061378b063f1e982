import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsPositive, Max, Min } from 'class-validator';

export class CreateExportDto {
  @ApiProperty({ example: 7, minimum: 1 })
  @IsInt()
  @IsPositive()
  datastreamId!: number;

  /** How long the handler takes: lets tests and demos hold a request in flight. */
  @ApiPropertyOptional({ description: 'Milliseconds the handler takes (demos).', minimum: 0, maximum: 10_000 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000)
  processingMs?: number;
}
