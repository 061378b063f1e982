import { IsInt, IsOptional, IsPositive, Max, Min } from 'class-validator';

export class CreateExportDto {
  @IsInt()
  @IsPositive()
  datastreamId!: number;

  /** How long the handler takes: lets tests and demos hold a request in flight. */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10_000)
  processingMs?: number;
}
