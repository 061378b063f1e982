import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsPositive, Max, Min } from 'class-validator';

export class CreateExportDto {
  // Up to 2^53-1, as payment amounts: exact in JavaScript and in the BIGINT column.
  @ApiProperty({ type: 'integer', description: 'A whole number up to 2^53-1.', example: 7, minimum: 1, maximum: Number.MAX_SAFE_INTEGER })
  @IsInt()
  @IsPositive()
  @Max(Number.MAX_SAFE_INTEGER)
  datastreamId!: number;

  /** How long the handler takes: lets tests and demos hold a request in flight. */
  @ApiPropertyOptional({ type: 'integer', description: 'Milliseconds the handler takes (demos).', minimum: 0, maximum: 10_000 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000)
  processingMs?: number;
}
